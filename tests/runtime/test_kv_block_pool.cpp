// KV block bookkeeping: blocks from a memory budget, the free list, per-sequence block tables
// and the slot arithmetic the backend relies on.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "runtime/kv_block_pool.h"

namespace autoglm {
namespace {

ModelConfig config(int64_t layers, int64_t kv_heads, int64_t head_dim) {
  ModelConfig c;
  c.num_hidden_layers = layers;
  c.num_key_value_heads = kv_heads;
  c.head_dim = head_dim;
  return c;
}

TEST(KvBudget, BlocksAreBudgetOverFp32BytesPerBlock) {
  const ModelConfig c = config(2, 4, 32);  // 2 * 2 * 4 * 32 * 4 = 2048 bytes per token
  EXPECT_EQ(cpu_kv_bytes_per_token(c), 2048u);
  const KvPoolShape shape = kv_pool_for_budget(c, 1u << 20, 16);  // 1 MiB / 32 KiB per block
  EXPECT_EQ(shape.num_blocks, 32);
  EXPECT_EQ(shape.block_size, 16);
  EXPECT_EQ(kv_pool_for_budget(c, (1u << 20) + 32767, 16).num_blocks, 32);  // rounds down
}

TEST(KvBudget, TooSmallABudgetSaysWhy) {
  try {
    kv_pool_for_budget(config(2, 4, 32), 1000, 16);
    FAIL() << "accepted a budget below one block";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("32768 bytes"), std::string::npos) << e.what();
  }
}

TEST(KvBlockPool, HandsOutDistinctBlocksAndTakesThemBack) {
  KvBlockPool pool(KvPoolShape{4, 8});
  std::vector<int32_t> a = pool.allocate(3);
  ASSERT_EQ(a.size(), 3u);  // in any order, but distinct:
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.free_blocks(), 1);
  EXPECT_THROW(pool.allocate(2), Error);
  EXPECT_EQ(pool.free_blocks(), 1);  // a failed allocation takes nothing
  pool.release(a);
  EXPECT_EQ(pool.free_blocks(), 4);
  EXPECT_EQ(pool.blocks_for_tokens(17), 3);
  EXPECT_EQ(pool.blocks_for_tokens(16), 2);
}

TEST(KvBlockPool, ExhaustionErrorGivesTheNumbers) {
  KvBlockPool pool(KvPoolShape{2, 16});
  try {
    pool.allocate(3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("need 3 more blocks of 16 tokens, 2 of 2 free"),
              std::string::npos)
        << e.what();
  }
}

TEST(SequenceBlocks, GrowsByBlocksMapsSlotsAndReleasesOnDestruction) {
  KvBlockPool pool(KvPoolShape{6, 4});
  const std::vector<int32_t> other = pool.allocate(1);  // so the sequence is not at block 0
  {
    SequenceBlocks seq(pool);
    seq.reserve_tokens(5);
    ASSERT_EQ(seq.table().size(), 2u);
    EXPECT_EQ(seq.capacity_tokens(), 8);
    seq.reserve_tokens(3);  // never shrinks
    EXPECT_EQ(seq.table().size(), 2u);
    seq.reserve_tokens(9);
    ASSERT_EQ(seq.table().size(), 3u);
    for (int32_t pos = 0; pos < 9; ++pos) {
      EXPECT_EQ(seq.slot(pos), seq.table()[static_cast<size_t>(pos / 4)] * 4 + pos % 4);
    }
    EXPECT_EQ(std::count(seq.table().begin(), seq.table().end(), other[0]), 0);
    EXPECT_EQ(pool.free_blocks(), 2);
  }
  EXPECT_EQ(pool.free_blocks(), 5);
}

TEST(KvBlockPool, RejectsDoubleRelease) {
  KvBlockPool pool(KvPoolShape{3, 4});
  const std::vector<int32_t> never = {2};
  EXPECT_THROW(pool.release(never), Error);  // never allocated
  const std::vector<int32_t> ids = pool.allocate(1);
  pool.release(ids);
  EXPECT_THROW(pool.release(ids), Error);  // released twice
  EXPECT_EQ(pool.free_blocks(), 3);
}

}  // namespace
}  // namespace autoglm
