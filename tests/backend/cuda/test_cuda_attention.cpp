// Tests of the CUDA paged KV write and paged attention (src/backend/cuda/attention.*) against a
// host attention in double precision over the same bf16/fp16-rounded inputs, with the CPU
// backend's layout and causal rule. Awkward sizes: block boundaries, odd lengths, GQA ratios,
// shuffled block tables, cached prefixes, mixed decode and prefill. Outputs, workspace and
// unused KV slots start as NaN, so a missing write or a stray read cannot pass. Skips with a
// message when there is no GPU. AUTOGLM_CUDA_BENCH=1 also runs the decode bandwidth benchmark.
// Thread ownership: test main thread only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "attention_test_support.h"
#include "backend/cuda/attention.h"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

using test::DeviceBuffer;

struct SeqSpec {
  int cached;  // keys already in the pool before this step
  int query;   // tokens this step
};

struct Case {
  ActType type = ActType::kBF16;
  int heads = 32;
  int kv_heads = 2;
  int head_dim = 128;
  int block_size = 16;
  std::vector<SeqSpec> seqs;
  float q_range = 2.0f;  // larger: sharper softmax
  // Hand paged_attention the list of sequences with more than one token (AttentionBatch::
  // prefill_seqs), as the backend does for a mixed step: decode and prefill kernels separately.
  bool list_prefill = false;
  // Leave the last of them out of the list: its rows must stay unwritten (NaN), which shows that
  // the listed launch runs the prefill kernel over the list only.
  bool drop_last_listed = false;
  // An FP8 E4M3 pool (PagedKvLayer's FP8 layout): the reference attends over the same E4M3
  // values, so only the kernel's own rounding (FP16 Q and probabilities) is measured.
  bool fp8 = false;
  // AttentionBatch::prefill_rows (0: the plan picks); run() covers 64 and 128 for prefills.
  int prefill_rows = 0;
};

constexpr uint16_t kNaNBits = 0xFFFF;  // NaN in both bf16 and fp16

// The test's batch, built on the host exactly as a scheduler would.
struct HostBatch {
  std::vector<int32_t> seq_start{0}, context_len, block_table, slot_mapping, prefill_seqs;
  int max_blocks = 0, total_blocks = 0, max_query = 0, max_context = 0;
};

HostBatch make_batch(const Case& c, std::mt19937& rng) {
  HostBatch b;
  std::vector<int> blocks_of;
  for (const SeqSpec& s : c.seqs) {
    const int ctx = s.cached + s.query;
    b.seq_start.push_back(b.seq_start.back() + s.query);
    b.context_len.push_back(ctx);
    blocks_of.push_back((ctx + c.block_size - 1) / c.block_size);
    b.max_blocks = std::max(b.max_blocks, blocks_of.back());
    b.max_query = std::max(b.max_query, s.query);
    b.max_context = std::max(b.max_context, ctx);
    if (s.query > 1) b.prefill_seqs.push_back(static_cast<int32_t>(b.context_len.size() - 1));
  }
  // Non-contiguous blocks: a shuffled pool with one spare block (all NaN) that also fills the
  // unused tail of every block-table row, so reading past a sequence's blocks shows up.
  const int used = std::accumulate(blocks_of.begin(), blocks_of.end(), 0);
  b.total_blocks = used + 1;
  std::vector<int32_t> ids(used);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  const int32_t spare = used;
  b.block_table.assign(c.seqs.size() * b.max_blocks, spare);
  int next = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    for (int j = 0; j < blocks_of[s]; ++j) b.block_table[s * b.max_blocks + j] = ids[next++];
    for (int j = 0; j < c.seqs[s].query; ++j) {
      const int pos = c.seqs[s].cached + j;
      b.slot_mapping.push_back(b.block_table[s * b.max_blocks + pos / c.block_size] * c.block_size +
                               pos % c.block_size);
    }
  }
  return b;
}

int32_t slot_of(const HostBatch& b, const Case& c, size_t seq, int pos) {
  return b.block_table[seq * b.max_blocks + pos / c.block_size] * c.block_size + pos % c.block_size;
}

// Host double-precision attention for token t, head h, over the pool after the KV write.
void reference_row(const Case& c, const HostBatch& b, size_t seq, int pos, const float* q_row,
                   const std::vector<float>& k_pool, const std::vector<float>& v_pool, int head,
                   std::vector<double>& scores, double* out) {
  const int hd = c.head_dim;
  const int64_t row = int64_t{c.kv_heads} * hd;
  const int64_t kv_off = int64_t{head / (c.heads / c.kv_heads)} * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  double m = -INFINITY;
  for (int j = 0; j <= pos; ++j) {
    const float* k = k_pool.data() + slot_of(b, c, seq, j) * row + kv_off;
    double dot = 0;
    for (int d = 0; d < hd; ++d) dot += double{q_row[d]} * k[d];
    scores[j] = dot * scale;
    m = std::max(m, scores[j]);
  }
  double l = 0;
  for (int j = 0; j <= pos; ++j) l += (scores[j] = std::exp(scores[j] - m));
  std::fill(out, out + hd, 0.0);
  for (int j = 0; j <= pos; ++j) {
    const float* v = v_pool.data() + slot_of(b, c, seq, j) * row + kv_off;
    for (int d = 0; d < hd; ++d) out[d] += scores[j] / l * v[d];
  }
}

// Max over (token, head) rows of max_d |gpu - ref| / max(max_d |ref|, 1e-2).
double check_outputs(const Case& c, const HostBatch& b, const std::vector<float>& q,
                     const std::vector<float>& k_pool, const std::vector<float>& v_pool,
                     const std::vector<uint16_t>& out_bits) {
  const int hd = c.head_dim;
  std::vector<double> scores(b.max_context), ref(hd);
  double worst = 0;
  int64_t non_finite = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    for (int j = 0; j < c.seqs[s].query; ++j) {
      const int64_t t = b.seq_start[s] + j;
      for (int h = 0; h < c.heads; ++h) {
        const int64_t at = (t * c.heads + h) * hd;
        reference_row(c, b, s, c.seqs[s].cached + j, q.data() + at, k_pool, v_pool, h, scores,
                      ref.data());
        double err = 0, ref_max = 1e-2;
        for (int d = 0; d < hd; ++d) {
          const float g = test::to_float(out_bits[at + d], c.type);
          if (!std::isfinite(g)) ++non_finite;
          err = std::max(err, std::abs(g - ref[d]));
          ref_max = std::max(ref_max, std::abs(ref[d]));
        }
        worst = std::max(worst, std::isfinite(err) ? err / ref_max : INFINITY);
      }
    }
  }
  if (c.drop_last_listed) {
    EXPECT_EQ(non_finite, int64_t{c.seqs.back().query} * c.heads * hd)
        << "the unlisted prefill sequence's rows (and only those) stay NaN";
    return worst;  // that sequence's rows count as infinite; the caller checks no further
  }
  EXPECT_EQ(non_finite, 0) << "non-finite attention outputs";
  return non_finite > 0 ? INFINITY : worst;
}

void run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const HostBatch b = make_batch(c, rng);
  const int n_tokens = b.seq_start.back();
  const int64_t row = int64_t{c.kv_heads} * c.head_dim;
  const int64_t pool_rows = int64_t{b.total_blocks} * c.block_size;

  // Pool: NaN everywhere, then the cached keys and this step's keys at their slots (the forward
  // writes them there with RoPE, qkv_norm_rope, before attention runs).
  std::vector<uint16_t> k_pool(pool_rows * row, kNaNBits), v_pool(k_pool);
  std::vector<uint16_t> k_new(n_tokens * row), v_new(k_new);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  auto fill_row = [&](uint16_t* dst, float range) {
    for (int64_t i = 0; i < row; ++i) dst[i] = test::to_bits(range * unit(rng), c.type);
  };
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    for (int pos = 0; pos < c.seqs[s].cached; ++pos) {
      fill_row(k_pool.data() + slot_of(b, c, s, pos) * row, 2.0f);
      fill_row(v_pool.data() + slot_of(b, c, s, pos) * row, 1.0f);
    }
  }
  for (int t = 0; t < n_tokens; ++t) {
    fill_row(k_new.data() + t * row, 2.0f);
    fill_row(v_new.data() + t * row, 1.0f);
  }
  std::vector<uint16_t> q(int64_t{n_tokens} * c.heads * c.head_dim);
  for (auto& x : q) x = test::to_bits(c.q_range * unit(rng), c.type);
  std::vector<uint16_t> k_want(k_pool), v_want(v_pool);
  for (int t = 0; t < n_tokens; ++t) {
    std::copy_n(k_new.data() + t * row, row, k_want.data() + b.slot_mapping[t] * row);
    std::copy_n(v_new.data() + t * row, row, v_want.data() + b.slot_mapping[t] * row);
  }

  // The E4M3 pool the kernel reads (unused slots NaN, 0x7F), and the values it holds as the
  // reference's input, back in the activation type's bits (E4M3 values are exact in FP16 and
  // BF16 alike).
  std::vector<uint8_t> k8, v8;
  if (c.fp8) {
    k8 = test::fp8_pool(k_want, c.type, row, c.head_dim, c.block_size, /*transposed=*/false);
    v8 = test::fp8_pool(v_want, c.type, row, c.head_dim, c.block_size, /*transposed=*/true);
    k_want = test::fp8_values(k_want, c.type);
    v_want = test::fp8_values(v_want, c.type);
  }
  DeviceBuffer d_seq_start(b.seq_start), d_ctx(b.context_len), d_table(b.block_table),
      d_slots(b.slot_mapping), d_k_pool(c.fp8 ? DeviceBuffer(k8) : DeviceBuffer(k_want)),
      d_v_pool(c.fp8 ? DeviceBuffer(v8) : DeviceBuffer(v_want)), d_q(q),
      d_prefill(b.prefill_seqs.empty() ? std::vector<int32_t>{0} : b.prefill_seqs);
  DeviceBuffer d_out(q.size() * sizeof(uint16_t));
  d_out.poison();
  AttentionBatch batch;
  batch.seq_start = d_seq_start.as<int32_t>();
  batch.context_len = d_ctx.as<int32_t>();
  batch.block_table = d_table.as<int32_t>();
  batch.slot_mapping = d_slots.as<int32_t>();
  batch.max_blocks_per_seq = b.max_blocks;
  batch.n_tokens = n_tokens;
  batch.n_seqs = static_cast<int32_t>(c.seqs.size());
  batch.max_query_len = b.max_query;
  batch.max_context_len = b.max_context;
  batch.block_size = c.block_size;
  batch.prefill_rows = c.prefill_rows;
  if (c.list_prefill) {
    batch.prefill_seqs = d_prefill.as<int32_t>();
    batch.n_prefill_seqs =
        static_cast<int32_t>(b.prefill_seqs.size()) - (c.drop_last_listed ? 1 : 0);
  }
  AttentionShape shape{c.heads, c.kv_heads, c.head_dim,
                       1.0f / std::sqrt(static_cast<float>(c.head_dim)), c.fp8};
  const PagedKvLayer kv{d_k_pool.data(), d_v_pool.data()};

  const size_t ws_bytes = paged_attention_workspace_bytes(batch, shape);
  DeviceBuffer d_ws(std::max<size_t>(ws_bytes, 16));
  d_ws.poison();
  paged_attention(batch, shape, d_q.data(), kv, d_out.data(), ws_bytes > 0 ? d_ws.data() : nullptr,
                  ws_bytes, c.type, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << cudaGetErrorString(cudaGetLastError());

  // Attention only reads the pool.
  if (c.fp8) {
    EXPECT_TRUE(d_k_pool.download<uint8_t>() == k8) << "K pool changed by attention";
    EXPECT_TRUE(d_v_pool.download<uint8_t>() == v8) << "V pool changed by attention";
  } else {
    EXPECT_TRUE(d_k_pool.download<uint16_t>() == k_want) << "K pool changed by attention";
    EXPECT_TRUE(d_v_pool.download<uint16_t>() == v_want) << "V pool changed by attention";
  }

  const double tol = c.type == ActType::kBF16 ? 1e-2 : 1e-3;
  if (c.drop_last_listed) {
    check_outputs(c, b, test::to_floats(q, c.type), test::to_floats(k_want, c.type),
                  test::to_floats(v_want, c.type), d_out.download<uint16_t>());
    return;
  }
  const double err =
      check_outputs(c, b, test::to_floats(q, c.type), test::to_floats(k_want, c.type),
                    test::to_floats(v_want, c.type), d_out.download<uint16_t>());
  EXPECT_LE(err, tol) << "max row-relative error; workspace " << ws_bytes << " bytes";
}

class CudaAttention : public ::testing::TestWithParam<ActType> {
 protected:
  void SetUp() override {
    if (!test::has_gpu()) GTEST_SKIP() << "no CUDA device: CUDA attention tests skipped";
  }
  // A case with a prefill runs with each query tile of the prefill kernel.
  void run(Case c, uint32_t seed = 1) {
    c.type = GetParam();
    SCOPED_TRACE(test::describe(c.heads, c.kv_heads, c.head_dim, c.block_size));
    const bool prefill =
        std::any_of(c.seqs.begin(), c.seqs.end(), [](const SeqSpec& s) { return s.query > 1; });
    for (const int rows : prefill ? std::vector<int>{64, 128} : std::vector<int>{0}) {
      SCOPED_TRACE("prefill rows " + std::to_string(rows));
      c.prefill_rows = rows;
      run_case(c, seed);
    }
  }
};

std::vector<SeqSpec> decodes(std::initializer_list<int> contexts) {
  std::vector<SeqSpec> seqs;
  for (int ctx : contexts) seqs.push_back({ctx - 1, 1});
  return seqs;
}

TEST_P(CudaAttention, DecodeGlm4Shape) {  // 32 heads over 2 KV heads, as GLM-4-9B
  run({.seqs = decodes({1, 15, 16, 17, 100, 1000, 1500})});
}

// Block sizes around the 64-key tile: blocks holding several tiles, small blocks, and sizes
// that are not powers of two (whole tiles of a power-of-two pool take the decode kernel's
// fast copies, the rest its general ones).
TEST_P(CudaAttention, DecodeBlockSizes) {
  run({.block_size = 128, .seqs = decodes({1, 100, 1000, 1500})});
  run({.block_size = 24, .seqs = decodes({17, 1000})});
  run({.heads = 16, .kv_heads = 16, .head_dim = 64, .block_size = 8, .seqs = decodes({70, 1025})});
}

TEST_P(CudaAttention, DecodeNoGqaHeadDim64) {
  run({.heads = 16, .kv_heads = 16, .head_dim = 64, .seqs = decodes({1, 15, 16, 17, 100, 1025})});
}

TEST_P(CudaAttention, DecodeGqa8LongContextManySplits) {
  run({.heads = 8, .kv_heads = 1, .seqs = decodes({5000})});
  run({.heads = 16, .kv_heads = 2, .head_dim = 64, .seqs = decodes({4097, 3}), .q_range = 8.0f});
}

TEST_P(CudaAttention, DecodeGroupWiderThanOneTile) {  // 24 query heads per KV head
  run({.heads = 48, .kv_heads = 2, .head_dim = 64, .seqs = decodes({1, 33, 700})});
}

TEST_P(CudaAttention, DecodeManySequencesNoSplit) {
  std::vector<SeqSpec> seqs;
  for (int i = 0; i < 300; ++i) seqs.push_back({(i * 37) % 200, 1});
  run({.heads = 8, .kv_heads = 8, .head_dim = 64, .seqs = seqs});
}

TEST_P(CudaAttention, PrefillFromEmpty) {
  for (int len : {7, 64, 65, 300}) {
    SCOPED_TRACE(len);
    run({.heads = 4, .kv_heads = 2, .seqs = {{0, len}}});
    run({.heads = 8, .kv_heads = 1, .head_dim = 64, .seqs = {{0, len}}});
  }
}

TEST_P(CudaAttention, ChunkedPrefillOverCachedKeys) {
  run({.heads = 32, .kv_heads = 2, .seqs = {{1000, 65}}});
  run({.heads = 16, .kv_heads = 16, .head_dim = 64, .seqs = {{100, 7}, {17, 64}}});
  run({.heads = 4, .kv_heads = 1, .block_size = 32, .seqs = {{15, 300}}, .q_range = 8.0f});
}

TEST_P(CudaAttention, MixedDecodeAndPrefill) {
  // In one prefill launch, and split between the decode and prefill kernels (decode tokens
  // before, between and after the chunks; splits over long decode contexts).
  for (const bool list_prefill : {false, true}) {
    SCOPED_TRACE(list_prefill ? "prefill sequences listed" : "one launch");
    run({.heads = 32,
         .kv_heads = 2,
         .seqs = {{99, 1}, {0, 300}, {17, 64}, {1000, 1}, {15, 7}},
         .list_prefill = list_prefill});
    run({.heads = 8,
         .kv_heads = 4,
         .head_dim = 64,
         .block_size = 8,
         .seqs = {{0, 1}, {1023, 1}, {3, 65}, {16, 16}},
         .list_prefill = list_prefill});
    run({.heads = 32, .kv_heads = 2, .seqs = {{0, 70}, {4999, 1}}, .list_prefill = list_prefill});
  }
  // A serving step's shape: many decode tokens over long contexts and one prefill chunk.
  std::vector<SeqSpec> serving;
  for (int i = 0; i < 40; ++i) serving.push_back({1200 + 37 * i, 1});
  serving.push_back({300, 200});
  run({.heads = 32, .kv_heads = 2, .seqs = serving, .list_prefill = true});
}

TEST_P(CudaAttention, AListedMixedStepComputesOnlyWhatItLists) {
  run({.heads = 4,
       .kv_heads = 2,
       .seqs = {{5, 1}, {0, 9}, {3, 5}},
       .list_prefill = true,
       .drop_last_listed = true});
}

// The FP8 pool: every routing (decode with and without key splits, prefill, chunked prefill
// over cached keys, mixed steps listed or not), head sizes 64 and 128, block sizes 16, 32, 48
// and 128, and contexts that end inside a 16-key run of V.
TEST_P(CudaAttention, Fp8Pool) {
  run({.seqs = decodes({1, 15, 16, 17, 100, 1000, 1500}), .fp8 = true});
  run({.heads = 16, .kv_heads = 16, .head_dim = 64, .seqs = decodes({1, 17, 1025}), .fp8 = true});
  run({.heads = 8, .kv_heads = 1, .seqs = decodes({5000}), .fp8 = true});
  run({.heads = 48, .kv_heads = 2, .head_dim = 64, .seqs = decodes({1, 33, 700}), .fp8 = true});
  for (int len : {7, 65, 300}) {
    SCOPED_TRACE(len);
    run({.heads = 4, .kv_heads = 2, .seqs = {{0, len}}, .fp8 = true});
    run({.heads = 8, .kv_heads = 1, .head_dim = 64, .seqs = {{0, len}}, .fp8 = true});
  }
  run({.heads = 32, .kv_heads = 2, .seqs = {{1000, 65}}, .fp8 = true});
  // Blocks that hold several key tiles, and a block size that is not a power of two (the
  // decode kernel's whole-tile copies take the first, the general copies the second).
  run({.block_size = 128, .seqs = decodes({1, 100, 1000, 1500}), .fp8 = true});
  run({.block_size = 48, .seqs = decodes({17, 1000, 1500}), .fp8 = true});
  run({.heads = 4,
       .kv_heads = 1,
       .block_size = 32,
       .seqs = {{15, 300}},
       .q_range = 8.0f,
       .fp8 = true});
  for (const bool list_prefill : {false, true}) {
    SCOPED_TRACE(list_prefill ? "prefill sequences listed" : "one launch");
    run({.heads = 32,
         .kv_heads = 2,
         .seqs = {{99, 1}, {0, 300}, {17, 64}, {1000, 1}, {15, 7}},
         .list_prefill = list_prefill,
         .fp8 = true});
  }
}

// FP8 decode batches of at least 64 (sequence, KV head) CTAs over 16-key blocks take the
// per-warp bulk-copy kernel (attention_decode_fp8.cuh): contexts that end at, inside and just past
// a 16-key run, with and without key splits, head sizes 64 and 128, a group wider than one row
// tile, and the decode half of a listed mixed step.
TEST_P(CudaAttention, Fp8PoolBulkDecode) {
  const auto cycle = [](std::initializer_list<int> contexts, int n) {
    std::vector<SeqSpec> seqs;
    for (int i = 0; i < n; ++i) seqs.push_back({contexts.begin()[i % contexts.size()] - 1, 1});
    return seqs;
  };
  run({.seqs = cycle({1, 2, 15, 16, 17, 31, 33, 64, 65, 100, 1000, 1500}, 36), .fp8 = true});
  std::vector<SeqSpec> many;
  for (int i = 0; i < 300; ++i) many.push_back({(i * 37) % 200, 1});
  run({.seqs = many, .fp8 = true});
  run({.heads = 16,
       .kv_heads = 16,
       .head_dim = 64,
       .seqs = cycle({1, 17, 1025, 64}, 4),
       .fp8 = true});
  run({.heads = 48, .kv_heads = 2, .head_dim = 64, .seqs = cycle({1, 33, 700}, 16), .fp8 = true});
  std::vector<SeqSpec> mixed = cycle({99, 1000, 17, 16, 1}, 40);
  mixed.push_back({0, 300});
  mixed.push_back({17, 64});
  run({.seqs = mixed, .list_prefill = true, .fp8 = true});
}

INSTANTIATE_TEST_SUITE_P(Types, CudaAttention, ::testing::Values(ActType::kBF16, ActType::kF16),
                         [](const auto& info) {
                           return info.param == ActType::kBF16 ? "BF16" : "FP16";
                         });

// Host-side validation runs before any device work, so it needs no GPU.
TEST(CudaAttentionArgs, RejectsUnsupportedHeadDimAndBadShapes) {
  AttentionBatch batch;
  batch.n_tokens = 1;
  batch.n_seqs = 1;
  batch.max_query_len = 1;
  batch.max_context_len = 1;
  const AttentionShape hd96{8, 2, 96, 0.1f};
  EXPECT_THROW(paged_attention_workspace_bytes(batch, hd96), Error);
  try {
    paged_attention(batch, hd96, nullptr, {}, nullptr, nullptr, 0, ActType::kBF16, nullptr);
    ADD_FAILURE() << "head_dim 96 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("head_dim 96"), std::string::npos) << e.what();
  }
  EXPECT_THROW(paged_attention_workspace_bytes(batch, {8, 3, 128, 0.1f}), Error);  // 8 % 3
  EXPECT_THROW(paged_attention(batch, {8, 2, 128, 0.0f}, nullptr, {}, nullptr, nullptr, 0,
                               ActType::kBF16, nullptr),
               Error);  // scale unset; the workspace query alone may leave it unset
  batch.block_size = 0;
  try {
    paged_attention(batch, {8, 2, 128, 0.1f}, nullptr, {}, nullptr, nullptr, 0, ActType::kF16,
                    nullptr);
    ADD_FAILURE() << "block_size 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_size"), std::string::npos) << e.what();
  }
}

// Benchmark (AUTOGLM_CUDA_BENCH=1): GLM-4-9B attention shape (32 heads, 2 KV heads, 128),
// BF16, block size 16, shuffled blocks. Decode: KV bytes read per call over the time of one
// call, beside a device-to-device copy measured in the same run. Prefill:
// one causal 4,096-token chunk, FLOP/s of QK^T and PV.
namespace bench {

constexpr int kHeads = 32, kKvHeads = 2, kHeadDim = 128, kBlock = 16;

// AUTOGLM_CUDA_BENCH_REPEAT=R times every line's loop R times as long (default 1), so that a
// power meter sampling beside it sees the kernel's steady draw.
int bench_repeat() {
  const char* repeat = std::getenv("AUTOGLM_CUDA_BENCH_REPEAT");
  return repeat != nullptr ? std::max(1, std::atoi(repeat)) : 1;
}

float time_ms(cudaStream_t stream, int iterations, const auto& call) {
  iterations *= bench_repeat();
  for (int i = 0; i < 3; ++i) call();
  cudaEvent_t start, stop;
  test::cuda_check(cudaEventCreate(&start), "event");
  test::cuda_check(cudaEventCreate(&stop), "event");
  test::cuda_check(cudaEventRecord(start, stream), "event");
  for (int i = 0; i < iterations; ++i) call();
  test::cuda_check(cudaEventRecord(stop, stream), "event");
  test::cuda_check(cudaEventSynchronize(stop), "event");
  float ms = 0;
  test::cuda_check(cudaEventElapsedTime(&ms, start, stop), "event");
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
  return ms / iterations;
}

struct Setup {
  AttentionBatch batch;
  std::vector<int32_t> seq_start, context_len, block_table;
};

Setup decode_setup(int n_seqs, int ctx, int query, std::mt19937& rng) {
  Setup s;
  const int blocks_per_seq = (ctx + kBlock - 1) / kBlock;
  std::vector<int32_t> ids(int64_t{n_seqs} * blocks_per_seq);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  s.block_table = ids;
  for (int i = 0; i <= n_seqs; ++i) s.seq_start.push_back(i * query);
  s.context_len.assign(n_seqs, ctx);
  s.batch.max_blocks_per_seq = blocks_per_seq;
  s.batch.n_tokens = n_seqs * query;
  s.batch.n_seqs = n_seqs;
  s.batch.max_query_len = query;
  s.batch.max_context_len = ctx;
  s.batch.block_size = kBlock;
  return s;
}

const AttentionShape kShape{kHeads, kKvHeads, kHeadDim, 1.0f / std::sqrt(float{kHeadDim})};
const AttentionShape kShapeFp8{kHeads, kKvHeads, kHeadDim, kShape.scale, /*kv_fp8=*/true};

size_t activation_bytes(const Setup& s) {
  return size_t{2} * s.batch.n_tokens * kHeads * kHeadDim;
}

// A Setup on the device with its Q, output and workspace, and (when given) a prefill list.
struct DeviceSetup {
  DeviceSetup(Setup setup, const std::vector<int32_t>& listed)
      : s(std::move(setup)),
        seq_start(s.seq_start),
        context_len(s.context_len),
        table(s.block_table),
        prefill(listed.empty() ? std::vector<int32_t>{0} : listed),
        q(activation_bytes(s)),
        out(activation_bytes(s)),
        ws_bytes(std::max(paged_attention_workspace_bytes(s.batch, kShape),
                          paged_attention_workspace_bytes(s.batch, kShapeFp8))),
        ws(std::max<size_t>(ws_bytes, 16)) {
    s.batch.seq_start = seq_start.as<int32_t>();
    s.batch.context_len = context_len.as<int32_t>();
    s.batch.block_table = table.as<int32_t>();
    q.fill_bytes(0x3C);
  }
  // One paged_attention call's time (BF16 activations; a BF16 or FP8 pool as `shape` says), the
  // listed prefill sequences handed over or not.
  float time_call(const PagedKvLayer& kv, int iterations, int32_t listed,
                  const AttentionShape& shape = kShape, int32_t prefill_rows = 0) {
    s.batch.prefill_rows = prefill_rows;
    s.batch.prefill_seqs = listed > 0 ? prefill.as<int32_t>() : nullptr;
    s.batch.n_prefill_seqs = listed;
    const float ms = time_ms(nullptr, iterations, [&] {
      paged_attention(s.batch, shape, q.data(), kv, out.data(), ws.data(), ws_bytes, ActType::kBF16,
                      nullptr);
    });
    test::cuda_check(cudaGetLastError(), "benchmark launch");
    return ms;
  }

  Setup s;
  DeviceBuffer seq_start, context_len, table, prefill, q, out;
  size_t ws_bytes;
  DeviceBuffer ws;
};

// How a bench line names its query tile (AttentionBatch::prefill_rows).
const char* tile_label(int32_t prefill_rows) {
  return prefill_rows == 0 ? "tile picked"
                           : (prefill_rows == 64 ? "64-row tiles" : "128-row tiles");
}

// AUTOGLM_CUDA_BENCH_ONLY="decode fp8 255x1500" runs only the lines whose "label NxCTX" contains
// it, so that a profiler sees one shape's launches.
bool selected(const char* label, int n_seqs, int ctx) {
  const char* only = std::getenv("AUTOGLM_CUDA_BENCH_ONLY");
  if (only == nullptr || *only == '\0') return true;
  const std::string key =
      std::string(label) + " " + std::to_string(n_seqs) + "x" + std::to_string(ctx);
  return key.find(only) != std::string::npos;
}

void run(const char* label, int n_seqs, int ctx, int query, const PagedKvLayer& kv,
         double ceiling_gbs, std::mt19937& rng, bool fp8 = false, int32_t prefill_rows = 0) {
  if (!selected(label, n_seqs, ctx)) return;
  DeviceSetup d(decode_setup(n_seqs, ctx, query, rng), {});
  const float ms = d.time_call(kv, 20, 0, fp8 ? kShapeFp8 : kShape, prefill_rows);
  if (query == 1) {
    const double kv_bytes = 2.0 * n_seqs * ctx * kKvHeads * kHeadDim * (fp8 ? 1 : 2);  // K and V
    const double gbs = kv_bytes / (ms * 1e-3) / 1e9;
    std::printf("%s batch %3d ctx %5d: %9.1f us  %7.1f GB/s  %5.1f%% of copy  (ws %zu B)\n", label,
                n_seqs, ctx, ms * 1e3, gbs, 100.0 * gbs / ceiling_gbs, d.ws_bytes);
  } else {
    // Causal (query, key) pairs of every sequence: its queries are the last of its ctx keys.
    const double pairs = static_cast<double>(n_seqs) * query * (2.0 * ctx - query + 1) / 2;
    const double flops = 4.0 * pairs * kHeads * kHeadDim;
    const std::string tile =
        prefill_rows > 0 ? std::string(" (") + tile_label(prefill_rows) + ")" : "";
    std::printf("%s %d x %d tokens%s: %9.1f us  %7.1f TFLOP/s\n", label, n_seqs, query,
                tile.c_str(), ms * 1e3, flops / (ms * 1e-3) / 1e12);
  }
}

// A serving step's attention: n_decode decode tokens over ctx keys each and one prefill chunk
// of `chunk` tokens from empty, in one prefill launch or split between the kernels
// (AttentionBatch::prefill_seqs).
void run_mixed(int n_decode, int ctx, int chunk, const PagedKvLayer& kv, std::mt19937& rng,
               bool fp8 = false) {
  if (!selected(fp8 ? "mixed fp8" : "mixed", n_decode, ctx)) return;
  Setup s = decode_setup(n_decode + 1, std::max(ctx, chunk), 1, rng);
  s.seq_start.back() = n_decode + chunk;
  s.context_len.back() = chunk;
  s.batch.n_tokens = n_decode + chunk;
  s.batch.max_query_len = chunk;
  DeviceSetup d(std::move(s), {n_decode});
  for (const int32_t listed : {0, 1}) {
    const float ms = d.time_call(kv, 10, listed, fp8 ? kShapeFp8 : kShape);
    std::printf("mixed%s %d decode x ctx %d + 1 x %d-token chunk, %s: %9.1f us\n",
                fp8 ? " fp8" : "", n_decode, ctx, chunk,
                listed > 0 ? "split launches" : "one prefill launch", ms * 1e3);
  }
}

// The usual serving step with a 1,024-token budget: 254 decode tokens, one prompt's last `tail`
// tokens (after 1,000 - tail cached) and the next prompt's first `head`, split launches; the
// query tile the plan picks, then each forced.
void run_two_chunks(int n_decode, int ctx, int tail, int head, const PagedKvLayer& kv,
                    std::mt19937& rng) {
  if (!selected("mixed fp8 two chunks", n_decode, ctx)) return;
  Setup s = decode_setup(n_decode + 2, std::max(ctx, 1000), 1, rng);
  s.seq_start[n_decode + 1] = n_decode + tail;
  s.seq_start[n_decode + 2] = n_decode + tail + head;
  s.context_len[n_decode] = 1000;
  s.context_len[n_decode + 1] = head;
  s.batch.n_tokens = n_decode + tail + head;
  s.batch.max_query_len = std::max(tail, head);
  DeviceSetup d(std::move(s), {n_decode, n_decode + 1});
  for (const int32_t rows : {0, 64, 128}) {
    const float ms = d.time_call(kv, 10, 2, kShapeFp8, rows);
    std::printf("mixed fp8 %d decode x ctx %d + %d-token tail + %d-token head, %s: %9.1f us\n",
                n_decode, ctx, tail, head, tile_label(rows), ms * 1e3);
  }
}

void run_all() {
  constexpr int kMaxBatch = 256, kMaxCtx = 8192;
  const size_t pool_bytes = size_t{kMaxBatch} * kMaxCtx * kKvHeads * kHeadDim * sizeof(uint16_t);
  DeviceBuffer k(pool_bytes), v(pool_bytes);
  k.fill_bytes(0x3C);  // 0x3C3C: a small finite bf16
  v.fill_bytes(0x3C);
  if (bench_repeat() > 1) {
    // Measured for power: random bytes toggle like real keys do. Each is 0x30-0x3F with a random
    // sign, finite whether read as E4M3 or as a BF16's high byte (|x| below 2).
    std::vector<uint8_t> bytes(pool_bytes);
    std::mt19937 fill(11);
    for (uint8_t& b : bytes) {
      const uint32_t r = fill();
      b = static_cast<uint8_t>((0x30 + (r & 15)) | (r & 0x80));
    }
    test::cuda_check(cudaMemcpy(k.data(), bytes.data(), pool_bytes, cudaMemcpyHostToDevice), "k");
    test::cuda_check(cudaMemcpy(v.data(), bytes.data(), pool_bytes, cudaMemcpyHostToDevice), "v");
  }
  const float copy_ms = time_ms(nullptr, 5, [&] {
    test::cuda_check(cudaMemcpyAsync(v.data(), k.data(), pool_bytes, cudaMemcpyDeviceToDevice),
                     "copy");
  });
  const double ceiling = 2.0 * pool_bytes / (copy_ms * 1e-3) / 1e9;
  std::printf("device-to-device copy (read + write): %.1f GB/s\n", ceiling);
  std::mt19937 rng(7);
  const PagedKvLayer kv{k.data(), v.data()};
  for (int ctx : {1024, 2048, 4096, 8192}) {
    for (int batch : {1, 8, 32, 64, 128, 256}) run("decode", batch, ctx, 1, kv, ceiling, rng);
  }
  run("prefill", 1, 4096, 4096, kv, ceiling, rng);
  run("prefill", 4, 2048, 2048, kv, ceiling, rng);
  run_mixed(255, 1500, 768, kv, rng);
  run_mixed(64, 1500, 960, kv, rng);
  // The FP8 pool (0x3C bytes: a small finite E4M3), bytes counted at one a value.
  for (int ctx : {1024, 2048, 8192}) {
    for (int batch : {1, 8, 32, 64, 256}) run("decode fp8", batch, ctx, 1, kv, ceiling, rng, true);
  }
  run("prefill fp8", 1, 4096, 4096, kv, ceiling, rng, true);
  run_mixed(255, 1500, 768, kv, rng, true);
  // A serving step's parts alone: its decode tokens, its chunk from empty, a prompt's last chunk
  // (the query tile the plan picks, then each forced).
  run("decode fp8", 255, 1500, 1, kv, ceiling, rng, true);
  run_two_chunks(254, 1500, 231, 538, kv, rng);
  for (const int32_t rows : {0, 64, 128}) {
    run("prefill fp8 chunk", 1, 768, 768, kv, ceiling, rng, true, rows);
    run("prefill fp8 chunk (ctx 1000)", 1, 1000, 232, kv, ceiling, rng, true, rows);
    run("prefill chunk", 1, 768, 768, kv, ceiling, rng, false, rows);
  }
  run("prefill", 1, 4096, 4096, kv, ceiling, rng, false, 64);
}

}  // namespace bench

// The backend sizes the workspace once from its largest batch (longest query, most sequences,
// longest context, scale not set yet); every smaller step must fit in that, decode steps of a
// few long sequences (the ones that split) included.
TEST(CudaAttentionArgs, WorkspaceBoundCoversEverySmallerStep) {
  const AttentionShape glm{32, 2, 128, 0.0f};
  AttentionBatch worst;
  worst.n_tokens = 8192;
  worst.n_seqs = 256;
  worst.max_query_len = 8192;
  worst.max_context_len = 131072;
  const size_t reserved = paged_attention_workspace_bytes(worst, glm);
  EXPECT_GT(reserved, 0u);
  for (int n_seqs : {1, 2, 7, 64, 255, 256}) {
    for (int ctx : {1, 255, 256, 257, 1000, 8192, 131072}) {
      for (int query : {1, 64}) {
        AttentionBatch step = worst;
        step.n_seqs = n_seqs;
        step.n_tokens = n_seqs * query;
        step.max_query_len = query;
        step.max_context_len = ctx;
        EXPECT_LE(paged_attention_workspace_bytes(step, glm), reserved)
            << n_seqs << " sequences, context " << ctx << ", query " << query;
      }
    }
  }
  AttentionBatch long_decode = worst;
  long_decode.n_seqs = 1;
  long_decode.n_tokens = 1;
  long_decode.max_query_len = 1;
  long_decode.max_context_len = 5000;  // one sequence, long context: split-KV needs partials
  EXPECT_GT(paged_attention_workspace_bytes(long_decode, glm), 0u);
}

TEST(CudaAttentionBench, DecodeBandwidth) {
  if (!test::bench_enabled()) GTEST_SKIP() << "set AUTOGLM_CUDA_BENCH=1 to run the benchmark";
  if (!test::has_gpu()) GTEST_SKIP() << "no CUDA device";
  bench::run_all();
}

}  // namespace
}  // namespace autoglm::cuda
