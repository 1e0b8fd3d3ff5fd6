// KV cache manager on plain data (no model): ref counts, double release, prefix hits across
// requests, tenant and model isolation, LRU eviction order, clean allocation failure, stats,
// and the invariant checker catching planted inconsistencies.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/kv_cache.h"

namespace autoglm {
namespace {

constexpr int32_t kBlockSize = 4;

KvCacheManager make_cache(int32_t num_blocks, bool prefix_caching = true) {
  return KvCacheManager(KvCacheConfig{num_blocks, kBlockSize, prefix_caching, "glm-4-9b"});
}

std::vector<int32_t> iota_tokens(int32_t count, int32_t first = 100) {
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

std::string hex(const BlockHash& hash) {
  std::string out;
  char digits[3];
  for (const uint8_t byte : hash.bytes) {
    std::snprintf(digits, sizeof digits, "%02x", byte);
    out += digits;
  }
  return out;
}

// One request as the scheduler drives it: reuse the cached prefix, allocate the rest, then
// (once "computed") commit every full block.
struct Sequence {
  Sequence() = default;
  Sequence(std::vector<int32_t> prompt, std::string tenant_salt)
      : tokens(std::move(prompt)), salt(std::move(tenant_salt)) {}

  std::vector<int32_t> tokens;
  std::string salt;
  std::vector<BlockId> table;
  int32_t cached_tokens = 0;

  bool admit(KvCacheManager& cache) {
    const auto hit = cache.acquire_prefix(tokens, salt);
    table = hit.blocks;
    cached_tokens = hit.tokens;
    const auto needed = static_cast<int32_t>((tokens.size() + kBlockSize - 1) / kBlockSize) -
                        hit.tokens / kBlockSize;
    const auto fresh = cache.allocate(needed);
    if (!fresh) {
      finish(cache);
      return false;
    }
    table.insert(table.end(), fresh->begin(), fresh->end());
    return true;
  }
  void commit_all(KvCacheManager& cache) const {
    for (size_t b = 0; (b + 1) * kBlockSize <= tokens.size(); ++b) {
      cache.commit_full_block(tokens, static_cast<int32_t>(b), table, salt);
    }
  }
  void finish(KvCacheManager& cache) {
    const std::vector<BlockId> tail_first(table.rbegin(), table.rend());
    cache.release(tail_first);
    table.clear();
  }
};

void expect_consistent(const KvCacheManager& cache, const std::vector<const Sequence*>& live) {
  std::vector<std::span<const BlockId>> tables;
  for (const Sequence* s : live) tables.emplace_back(s->table);
  EXPECT_NO_THROW(cache.check_invariants(tables));
}

ErrorCode code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "expected an autoglm::Error";
  return ErrorCode::kInternal;
}

TEST(KvCacheHash, MatchesTheDocumentedBytes) {
  // Golden values from Python's hashlib over the layout documented in kv_cache.h.
  const std::vector<int32_t> first = {1, 2, -3, 151329};
  const std::vector<int32_t> second = {5, 6, 7, 8};
  const BlockHash h1 = compute_block_hash(BlockHash{}, "glm-4-9b", "tenant-a", first);
  EXPECT_EQ(hex(h1), "0342c460e921b40f8b59eca65f18c12a1c1efcf83c2bd704b953c7298b93bbb1");
  const BlockHash h2 = compute_block_hash(h1, "glm-4-9b", "tenant-a", second);
  EXPECT_EQ(hex(h2), "65ea5a0130a78e0c908112baeeda534f07607085fce10d3f7184181673b5dc7f");
}

TEST(KvCacheHash, ModelSaltParentAndSplitAllChangeTheHash) {
  const std::vector<int32_t> tokens = {1, 2, 3, 4};
  const BlockHash base = compute_block_hash(BlockHash{}, "m", "t", tokens);
  EXPECT_FALSE(base == compute_block_hash(BlockHash{}, "m2", "t", tokens));
  EXPECT_FALSE(base == compute_block_hash(BlockHash{}, "m", "t2", tokens));
  EXPECT_FALSE(base == compute_block_hash(base, "m", "t", tokens));
  // Length prefixes keep ("ab", "c") apart from ("a", "bc").
  EXPECT_FALSE(compute_block_hash(BlockHash{}, "ab", "c", tokens) ==
               compute_block_hash(BlockHash{}, "a", "bc", tokens));
}

TEST(KvCacheManager, AllocateAndReleaseTrackRefCounts) {
  KvCacheManager cache = make_cache(8);
  EXPECT_EQ(cache.available_blocks(), 8);
  const auto blocks = cache.allocate(3);
  ASSERT_TRUE(blocks);
  EXPECT_EQ(*blocks, (std::vector<BlockId>{0, 1, 2}));
  for (const BlockId b : *blocks) EXPECT_EQ(cache.ref_count(b), 1);
  EXPECT_EQ(cache.stats().used_blocks, 3);
  EXPECT_EQ(cache.available_blocks(), 5);
  const std::vector<std::span<const BlockId>> live = {*blocks};
  EXPECT_NO_THROW(cache.check_invariants(live));

  cache.release(*blocks);
  EXPECT_EQ(cache.stats().used_blocks, 0);
  EXPECT_EQ(cache.available_blocks(), 8);
  EXPECT_EQ(cache.ref_count(1), 0);
  EXPECT_NO_THROW(cache.check_invariants({}));
  EXPECT_EQ(code_of([&] { cache.ref_count(8); }), ErrorCode::kInvalidArgument);
}

TEST(KvCacheManager, RejectsABadConfig) {
  EXPECT_EQ(code_of([] {
              KvCacheManager(KvCacheConfig{-1, 16, true, "m"});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([] {
              KvCacheManager(KvCacheConfig{8, 0, true, "m"});
            }),
            ErrorCode::kInvalidArgument);
  KvCacheManager empty(KvCacheConfig{0, 16, true, "m"});
  EXPECT_EQ(empty.available_blocks(), 0);
  EXPECT_FALSE(empty.allocate(1));
}

TEST(KvCacheManager, ShortPromptsHaveNoFullBlockToReuse) {
  KvCacheManager cache = make_cache(8);
  Sequence a{iota_tokens(4), ""};
  ASSERT_TRUE(a.admit(cache));
  a.commit_all(cache);  // one full block, committed
  a.finish(cache);
  for (const int32_t length : {0, 1, 4}) {
    const auto prompt = iota_tokens(length);
    const auto hit = cache.acquire_prefix(prompt, "");
    EXPECT_TRUE(hit.blocks.empty()) << length << " tokens";
    EXPECT_EQ(hit.tokens, 0);
  }
  EXPECT_EQ(cache.stats().prefix_queries, 4u + 0u + 1u + 4u);
  EXPECT_EQ(cache.acquire_prefix(iota_tokens(5), "").tokens, 4);  // one more token: a hit
}

TEST(KvCacheManager, DoubleReleaseIsDetectedAndChangesNothing) {
  KvCacheManager cache = make_cache(4);
  const auto blocks = cache.allocate(2);
  ASSERT_TRUE(blocks);
  // The same block twice in one call while it holds one reference: rejected as a whole.
  const std::vector<BlockId> twice = {(*blocks)[0], (*blocks)[1], (*blocks)[0]};
  EXPECT_EQ(code_of([&] { cache.release(twice); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cache.ref_count((*blocks)[0]), 1);
  EXPECT_EQ(cache.ref_count((*blocks)[1]), 1);
  const std::vector<std::span<const BlockId>> live = {*blocks};
  EXPECT_NO_THROW(cache.check_invariants(live));

  cache.release(*blocks);
  EXPECT_EQ(code_of([&] { cache.release(*blocks); }), ErrorCode::kInvalidArgument);
  const std::vector<BlockId> foreign = {4};
  EXPECT_EQ(code_of([&] { cache.release(foreign); }), ErrorCode::kInvalidArgument);
  EXPECT_NO_THROW(cache.check_invariants({}));
  EXPECT_EQ(cache.available_blocks(), 4);
}

TEST(KvCacheManager, AllocateFailsCleanlyWhenThePoolIsShort) {
  KvCacheManager cache = make_cache(4);
  const auto held = cache.allocate(3);
  ASSERT_TRUE(held);
  const KvCacheStats before = cache.stats();
  EXPECT_FALSE(cache.allocate(2));
  EXPECT_EQ(cache.available_blocks(), 1);
  EXPECT_EQ(cache.stats().used_blocks, before.used_blocks);
  EXPECT_EQ(cache.allocate(0), std::vector<BlockId>{});
  EXPECT_EQ(code_of([&] { cache.allocate(-1); }), ErrorCode::kInvalidArgument);
  const std::vector<std::span<const BlockId>> live = {*held};
  EXPECT_NO_THROW(cache.check_invariants(live));
}

TEST(KvCacheManager, SamePromptReusesFullBlocksButNeverTheLastToken) {
  KvCacheManager cache = make_cache(16);
  Sequence a{iota_tokens(10), ""};  // blocks: [0,4) [4,8) full, [8,10) partial
  ASSERT_TRUE(a.admit(cache));
  EXPECT_EQ(a.cached_tokens, 0);
  a.commit_all(cache);
  const std::vector<BlockId> a_table = a.table;
  a.finish(cache);
  EXPECT_EQ(cache.stats().cached_free_blocks, 2);

  Sequence b{iota_tokens(10), ""};
  ASSERT_TRUE(b.admit(cache));
  EXPECT_EQ(b.cached_tokens, 8);
  EXPECT_EQ(b.table[0], a_table[0]);
  EXPECT_EQ(b.table[1], a_table[1]);
  EXPECT_EQ(cache.stats().cached_free_blocks, 0);
  expect_consistent(cache, {&b});
  b.finish(cache);

  // A prompt of exactly two full blocks reuses only the first: its last token must run.
  Sequence c{iota_tokens(8), ""};
  ASSERT_TRUE(c.admit(cache));
  EXPECT_EQ(c.cached_tokens, 4);
  c.finish(cache);
}

TEST(KvCacheManager, LongerAndDivergingPromptsHitTheCommonFullBlocks) {
  KvCacheManager cache = make_cache(16);
  Sequence a{iota_tokens(10), ""};
  ASSERT_TRUE(a.admit(cache));
  a.commit_all(cache);

  Sequence longer{iota_tokens(14), ""};  // a's 10 tokens, then 4 more
  ASSERT_TRUE(longer.admit(cache));
  EXPECT_EQ(longer.cached_tokens, 8);         // a's third block was partial, so never cached
  EXPECT_EQ(cache.ref_count(a.table[0]), 2);  // shared while both are live

  Sequence diverging{iota_tokens(10), ""};
  diverging.tokens[5] = 7;  // differs inside the second block
  ASSERT_TRUE(diverging.admit(cache));
  EXPECT_EQ(diverging.cached_tokens, 4);
  EXPECT_EQ(cache.ref_count(a.table[0]), 3);
  expect_consistent(cache, {&a, &longer, &diverging});

  for (Sequence* s : {&a, &longer, &diverging}) s->finish(cache);
  expect_consistent(cache, {});
}

TEST(KvCacheManager, PartialBlocksCannotBeCommitted) {
  KvCacheManager cache = make_cache(4);
  Sequence a{iota_tokens(10), ""};
  ASSERT_TRUE(a.admit(cache));
  EXPECT_EQ(code_of([&] { cache.commit_full_block(a.tokens, 2, a.table, ""); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { cache.commit_full_block(a.tokens, 3, a.table, ""); }),
            ErrorCode::kInvalidArgument);
  a.finish(cache);
  // A block that holds no reference cannot be committed either.
  EXPECT_EQ(code_of([&] { cache.commit_full_block(a.tokens, 0, std::vector<BlockId>{0}, ""); }),
            ErrorCode::kInvalidArgument);
}

TEST(KvCacheManager, TenantsAndModelsNeverShareEntries) {
  KvCacheManager cache = make_cache(16);
  Sequence alice{iota_tokens(9), "alice"};
  ASSERT_TRUE(alice.admit(cache));
  alice.commit_all(cache);
  alice.finish(cache);

  for (const char* other : {"bob", ""}) {
    Sequence s{iota_tokens(9), other};
    ASSERT_TRUE(s.admit(cache));
    EXPECT_EQ(s.cached_tokens, 0) << "tenant '" << other << "' saw alice's prefix";
    s.finish(cache);
  }
  Sequence again{iota_tokens(9), "alice"};
  ASSERT_TRUE(again.admit(cache));
  EXPECT_EQ(again.cached_tokens, 8);
  again.finish(cache);

  // The model id is part of every hash: a manager for another model computes other keys.
  KvCacheManager other_model(KvCacheConfig{16, kBlockSize, true, "glm-4-9b-lora-x"});
  const std::vector<int32_t> block = iota_tokens(4);
  EXPECT_FALSE(compute_block_hash(BlockHash{}, "glm-4-9b", "alice", block) ==
               compute_block_hash(BlockHash{}, "glm-4-9b-lora-x", "alice", block));
}

TEST(KvCacheManager, EvictsCachedFreeBlocksInLruOrderTailFirst) {
  KvCacheManager cache = make_cache(6);
  Sequence a{iota_tokens(8, 100), ""};
  Sequence b{iota_tokens(8, 200), ""};
  ASSERT_TRUE(a.admit(cache));
  a.commit_all(cache);
  a.finish(cache);  // a's blocks go on the LRU list first, tail first (a1 before a0)
  ASSERT_TRUE(b.admit(cache));
  b.commit_all(cache);
  const std::vector<BlockId> b_table = b.table;
  b.finish(cache);
  EXPECT_EQ(cache.stats().cached_free_blocks, 4);
  EXPECT_EQ(cache.available_blocks(), 6);

  // Touch a again: it becomes the most recently used, so b is now the oldest.
  Sequence a_again{iota_tokens(9, 100), ""};
  ASSERT_TRUE(a_again.admit(cache));
  EXPECT_EQ(a_again.cached_tokens, 8);
  a_again.finish(cache);

  // Two free blocks, then one eviction: b's tail block, b's head block stays cached.
  const auto taken = cache.allocate(3);
  ASSERT_TRUE(taken);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ((*taken)[2], b_table[1]);
  Sequence b_again{iota_tokens(9, 200), ""};
  const auto hit = cache.acquire_prefix(b_again.tokens, "");
  EXPECT_EQ(hit.tokens, 4);
  cache.release(hit.blocks);
  cache.release(*taken);
  expect_consistent(cache, {});
}

TEST(KvCacheManager, StatsCountQueriesHitsAndEvictions) {
  KvCacheManager cache = make_cache(4);
  Sequence a{iota_tokens(9), ""};
  ASSERT_TRUE(a.admit(cache));  // 9 tokens looked up, none found
  a.commit_all(cache);
  a.finish(cache);
  Sequence b{iota_tokens(9), ""};
  ASSERT_TRUE(b.admit(cache));  // 9 more looked up, 8 found
  b.finish(cache);
  const auto all = cache.allocate(4);  // evicts both cached blocks
  ASSERT_TRUE(all);
  const KvCacheStats stats = cache.stats();
  EXPECT_EQ(stats.total_blocks, 4);
  EXPECT_EQ(stats.used_blocks, 4);
  EXPECT_EQ(stats.cached_free_blocks, 0);
  EXPECT_EQ(stats.prefix_queries, 18u);
  EXPECT_EQ(stats.prefix_hits, 8u);
  EXPECT_EQ(stats.evictions, 2u);
  cache.release(*all);
}

TEST(KvCacheManager, DisabledPrefixCachingNeverCachesOrCounts) {
  KvCacheManager cache = make_cache(8, /*prefix_caching=*/false);
  Sequence a{iota_tokens(9), ""};
  ASSERT_TRUE(a.admit(cache));
  a.commit_all(cache);
  a.finish(cache);
  EXPECT_EQ(cache.stats().cached_free_blocks, 0);
  Sequence b{iota_tokens(9), ""};
  ASSERT_TRUE(b.admit(cache));
  EXPECT_EQ(b.cached_tokens, 0);
  EXPECT_EQ(cache.stats().prefix_queries, 0u);
  b.finish(cache);
  expect_consistent(cache, {});
}

TEST(KvCacheManager, DuplicateComputationKeepsOneIndexedCopyAndTheChain) {
  KvCacheManager cache = make_cache(16);
  Sequence a{iota_tokens(8), ""};
  Sequence b{iota_tokens(13), ""};  // admitted before a commits: computes block 0 again
  ASSERT_TRUE(a.admit(cache));
  ASSERT_TRUE(b.admit(cache));
  EXPECT_EQ(b.cached_tokens, 0);
  cache.commit_full_block(a.tokens, 0, a.table, "");
  b.commit_all(cache);  // b's block 0 duplicates a's; b's blocks 1 and 2 chain on from it
  expect_consistent(cache, {&a, &b});
  const BlockId a0 = a.table[0];
  a.finish(cache);
  b.finish(cache);
  EXPECT_EQ(cache.stats().cached_free_blocks, 3);  // a0, b1, b2; b0 went back to the free list

  Sequence c{iota_tokens(13), ""};
  ASSERT_TRUE(c.admit(cache));
  EXPECT_EQ(c.cached_tokens, 12);
  EXPECT_EQ(c.table[0], a0);
  c.finish(cache);
  expect_consistent(cache, {});
}

TEST(KvCacheManager, OutOfOrderCommitsBuildTheSameChain) {
  KvCacheManager cache = make_cache(8);
  Sequence a{iota_tokens(9), ""};
  ASSERT_TRUE(a.admit(cache));
  cache.commit_full_block(a.tokens, 1, a.table, "");  // parent not committed yet
  cache.commit_full_block(a.tokens, 0, a.table, "");
  a.finish(cache);
  Sequence b{iota_tokens(9), ""};
  ASSERT_TRUE(b.admit(cache));
  EXPECT_EQ(b.cached_tokens, 8);
  b.finish(cache);
}

TEST(KvCacheInvariants, CatchPlantedInconsistencies) {
  KvCacheManager cache = make_cache(8);
  Sequence a{iota_tokens(9), ""};
  Sequence b{iota_tokens(9), ""};
  ASSERT_TRUE(a.admit(cache));
  a.commit_all(cache);
  ASSERT_TRUE(b.admit(cache));  // shares a's two full blocks
  const std::vector<std::span<const BlockId>> both = {a.table, b.table};
  EXPECT_NO_THROW(cache.check_invariants(both));

  auto expect_violation = [&](std::vector<std::span<const BlockId>> tables, const char* needle) {
    try {
      cache.check_invariants(tables);
      ADD_FAILURE() << "no violation reported for: " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInternal);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // A live table the cache does not know about (b forgotten: shared blocks look over-counted).
  expect_violation({a.table}, "appears 1 times");
  // A block listed twice in one table.
  std::vector<BlockId> doubled = b.table;
  doubled.push_back(b.table.back());
  expect_violation({a.table, doubled}, "appears 2 times");
  // A table that names a block outside the pool.
  const std::vector<BlockId> stray = {42};
  expect_violation({a.table, b.table, stray}, "outside the pool");
  // A block that was released while a table still holds it.
  const std::vector<BlockId> b_tail = {b.table.back()};
  cache.release(b_tail);
  expect_violation(both, "ref count 0");
}

TEST(KvCacheInvariants, HoldAfterEveryStepOfARandomWorkload) {
  std::mt19937 rng(1234);
  KvCacheManager cache = make_cache(24);
  std::vector<Sequence> live;
  const std::vector<std::string> tenants = {"", "t1", "t2"};
  for (int step = 0; step < 2000; ++step) {
    const int action = static_cast<int>(rng() % 3);
    if (action == 0 || live.empty()) {
      // Prompts share prefixes often: a small alphabet of 3 leading patterns.
      Sequence s;
      s.salt = tenants[rng() % tenants.size()];
      s.tokens = iota_tokens(static_cast<int32_t>(1 + rng() % 30), 1000 * (1 + rng() % 3));
      if (s.admit(cache)) live.push_back(std::move(s));
    } else if (action == 1) {
      live[rng() % live.size()].commit_all(cache);
    } else {
      const size_t victim = rng() % live.size();
      live[victim].finish(cache);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    std::vector<std::span<const BlockId>> tables;
    for (const Sequence& s : live) tables.emplace_back(s.table);
    ASSERT_NO_THROW(cache.check_invariants(tables)) << "step " << step;
    const KvCacheStats stats = cache.stats();
    ASSERT_EQ(stats.used_blocks + cache.available_blocks(), stats.total_blocks);
  }
  EXPECT_GT(cache.stats().prefix_hits, 0u);
  EXPECT_GT(cache.stats().evictions, 0u);
}

}  // namespace
}  // namespace autoglm
