// Host launchers for paged attention (interface in attention.h; the kernels are in
// attention_kernel.cuh). Routing: a batch whose sequences all decode one token runs
// flash-decoding (keys split over several CTAs per sequence when there are too few sequences to
// fill the GPU, then combine_splits_kernel); any batch with a longer query runs the same tiled
// kernel with 128-row query tiles (64 when those would not fill the GPU) and one split. No
// allocation, no sync and no host loop over tokens here: only launches on `stream`.
// Thread ownership: called by the engine thread.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_decode_fp8.cuh"
#include "backend/cuda/attention_kernel.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

// Split-KV tuning: no split shorter than one key tile, at most kMaxSplits per sequence. Once a
// split's block-table reads stopped being one dependent round trip per key, one-tile splits beat
// two-tile ones (H200, 9B batch-1 step: 4.749 against 4.794 ms at 163 keys, 4.845 against 4.886
// at 1,035; batch 8 5.743 against 5.792; batch 64 and 256 unchanged).
constexpr int kMinKeysPerSplit = 64;
constexpr int kMaxSplits = 64;
constexpr int kUnsplit = 1 << 30;  // split_len meaning "all keys in one split"
constexpr int kMaxWaveSplits = 4;  // splits per sequence when the CTAs exceed a wave

[[noreturn]] void reject(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "paged attention: " + what);
}

// `sizing`: the workspace query, which callers may make with a shape whose scale is not set yet.
void validate(const AttentionBatch& b, const AttentionShape& s, bool sizing = false) {
  if (s.num_heads <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0) {
    reject("num_heads " + std::to_string(s.num_heads) + " must be a positive multiple of " +
           "num_kv_heads " + std::to_string(s.num_kv_heads));
  }
  if (s.head_dim != 64 && s.head_dim != 128) {
    throw Error(ErrorCode::kUnsupported, "paged attention: head_dim " + std::to_string(s.head_dim) +
                                             " is not supported by the CUDA kernels (64, 128)");
  }
  if (!sizing && !(s.scale > 0.0f)) reject("scale must be positive");
  if (b.block_size <= 0) reject("block_size must be positive");
  if (s.kv_fp8 && b.block_size % 16 != 0) {
    reject("an FP8 KV pool needs a block_size that is a multiple of 16, not " +
           std::to_string(b.block_size));
  }
  if (b.n_tokens < 0 || b.n_seqs < 0) reject("negative token or sequence count");
  if (b.n_tokens > 0 && (b.max_query_len <= 0 || b.max_context_len <= 0)) {
    reject("max_query_len and max_context_len must be set (host-side maxima)");
  }
}

int sm_count() {
  int device = 0;
  int count = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      count <= 0) {
    (void)cudaGetLastError();  // no device: size for an H100-class part instead
    count = 132;
  }
  return count;
}

// Above 48 KiB of dynamic shared memory a kernel must opt in, once per instantiation; the
// occupancy query needs it too. Returns the error, cudaSuccess when done.
template <typename T, int HD, int ROWS, bool FP8>
cudaError_t opt_in_shared_memory() {
  static const cudaError_t opted_in = cudaFuncSetAttribute(
      attn::paged_attention_kernel<T, HD, ROWS, FP8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      int{attn::Smem<T, HD, ROWS, FP8>::bytes});
  return opted_in;
}

// The same for fp8_decode_bulk_kernel.
template <typename T, int HD>
cudaError_t opt_in_bulk_shared_memory() {
  static const cudaError_t opted_in = cudaFuncSetAttribute(
      attn::fp8_decode_bulk_kernel<T, HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      int{attn::BulkDecodeSmem<HD>::bytes});
  return opted_in;
}

// Throws when a kernel could not opt in to its `bytes` of shared memory.
void require_shared_memory(cudaError_t opted_in, size_t bytes) {
  if (opted_in != cudaSuccess) {
    throw Error(ErrorCode::kInternal,
                std::string("paged attention: cannot reserve ") + std::to_string(bytes) +
                    " bytes of shared memory: " + cudaGetErrorString(opted_in));
  }
}

// CTAs of `kernel` (kThreads threads, `smem` bytes) that one SM holds at once; 2 when no device
// answers or the shared-memory opt-in failed.
template <typename Kernel>
int occupancy_of(Kernel kernel, size_t smem, cudaError_t opted_in) {
  int blocks = 0;
  if (opted_in != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, attn::kThreads, smem) !=
          cudaSuccess ||
      blocks <= 0) {
    (void)cudaGetLastError();
    blocks = 2;
  }
  return blocks;
}

// CTAs of one instantiation (head size, rows, pool format) that one SM holds at once, asked of
// the driver once each. Decode CTAs: shared memory sets it (~106 KB at head_dim 128, two a SM on
// Hopper; ~55 KB at 64, four; FP8 tiles ~36 KB at 128, four by registers). With an FP8 pool the
// decode plan may run either decode kernel (fp8_bulk_decode below), so its wave is the smaller
// of the two (both four an SM on Hopper: the bulk kernel's ~48 KB and 128 registers).
template <int HD, int ROWS, bool FP8>
int ctas_per_sm() {
  using T = __nv_bfloat16;
  int blocks =
      occupancy_of(attn::paged_attention_kernel<T, HD, ROWS, FP8>,
                   attn::Smem<T, HD, ROWS, FP8>::bytes, opt_in_shared_memory<T, HD, ROWS, FP8>());
  if constexpr (FP8 && ROWS == attn::kDecodeRows) {
    blocks = std::min(
        blocks, occupancy_of(attn::fp8_decode_bulk_kernel<T, HD>, attn::BulkDecodeSmem<HD>::bytes,
                             opt_in_bulk_shared_memory<T, HD>()));
  }
  return blocks;
}

// The CTAs of `ROWS` rows that the whole GPU holds at once: one wave.
template <int ROWS>
int64_t wave_of(const AttentionShape& s) {
  static const int per_sm[2][2] = {
      {ctas_per_sm<64, ROWS, false>(), ctas_per_sm<64, ROWS, true>()},
      {ctas_per_sm<128, ROWS, false>(), ctas_per_sm<128, ROWS, true>()}};
  return int64_t{sm_count()} * per_sm[s.head_dim == 64 ? 0 : 1][s.kv_fp8 ? 1 : 0];
}

// Splits per sequence for `ctas` decode CTAs and a wave of `wave`: as many as fit in one wave,
// rounded down; with more CTAs than a wave, the count of up to kMaxWaveSplits that wastes the
// least of the last wave (512 CTAs on 396 slots run as 2 rounds, 65% full; split in two, as 3
// rounds 86% full), taking more splits only for 5 points of fill or more.
int64_t decode_splits(int64_t ctas, int64_t wave) {
  if (ctas <= wave) return std::max<int64_t>(1, wave / ctas);
  const auto fill = [&](int64_t splits) {
    const int64_t total = ctas * splits;
    return static_cast<double>(total) / static_cast<double>((total + wave - 1) / wave * wave);
  };
  int64_t best = 1;
  for (int64_t splits = 2; splits <= kMaxWaveSplits; ++splits) {
    if (fill(splits) >= fill(best) + 0.05) best = splits;
  }
  return best;
}

struct Plan {
  bool decode = false;  // every sequence has at most one query token
  int rows = attn::kPrefillRows;
  int row_tiles = 1;
  int splits = 1;
  int split_len = kUnsplit;
};

// `launch_seqs`, `launch_tokens`: the sequences of the launch (the listed ones of a mixed step's
// prefill launch) and their query tokens.
Plan plan(const AttentionBatch& b, const AttentionShape& s, int32_t launch_seqs,
          int64_t launch_tokens) {
  Plan p;
  const int group = s.num_heads / s.num_kv_heads;
  const auto row_tiles = [&](int rows) {
    return static_cast<int>((int64_t{std::max(b.max_query_len, 1)} * group + rows - 1) / rows);
  };
  p.decode = b.max_query_len <= 1;
  p.rows = p.decode ? attn::kDecodeRows : attn::kPrefillRows;
  p.row_tiles = row_tiles(p.rows);
  if (!p.decode) {
    // A causal CTA's time grows with its keys, so a grid of fewer CTAs than the GPU holds is as
    // long as its longest CTA: a serving step's one chunk (768 tokens of GLM-4-9B: 192 CTAs of
    // 128 rows, the last over all 768 keys; 232 tokens after 768 cached: 58 CTAs over up to
    // 1,000 keys) left most SMs idle. Halving the tile halves that CTA's work and doubles the grid.
    // The CTAs that do work, not the grid: a sequence shorter than the longest one leaves its
    // surplus row tiles empty (a step's 231-token tail of one prompt beside the 538-token head of
    // the next: a grid of 272 CTAs of 128 rows, about 196 of them working).
    const int64_t rows = launch_tokens * group;
    const int64_t ctas = s.num_kv_heads * ((rows + p.rows - 1) / p.rows + launch_seqs - 1);
    const bool short_grid = ctas < wave_of<attn::kPrefillRows>(s);
    if (b.prefill_rows == attn::kShortPrefillRows || (b.prefill_rows == 0 && short_grid)) {
      p.rows = attn::kShortPrefillRows;
      p.row_tiles = row_tiles(p.rows);
    }
    return p;
  }
  if (b.n_seqs == 0) return p;
  // As many CTAs as fit at once, rounded down, so that the grid is one full wave and not one
  // wave and a partial second; but no split shorter than kMinKeysPerSplit keys. (Rounded up,
  // batch 64 ran 384 CTAs on an H200's 264 slots; docs/PERFORMANCE.md has the measurements.)
  const int64_t ctas = int64_t{b.n_seqs} * s.num_kv_heads * p.row_tiles;
  const int64_t by_len = (int64_t{b.max_context_len} + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const int splits = static_cast<int>(std::clamp<int64_t>(
      std::min(decode_splits(ctas, wave_of<attn::kDecodeRows>(s)), by_len), 1, kMaxSplits));
  if (splits == 1) return p;
  const int per_split = (b.max_context_len + splits - 1) / splits;
  p.split_len = (per_split + attn::kKeyTile - 1) / attn::kKeyTile * attn::kKeyTile;
  p.splits = (b.max_context_len + p.split_len - 1) / p.split_len;
  if (p.splits == 1) p.split_len = kUnsplit;
  return p;
}

size_t workspace_for(const Plan& p, int64_t n_seqs, const AttentionShape& s) {
  if (p.splits <= 1) return 0;
  const int64_t parts = n_seqs * s.num_heads * p.splits;
  return static_cast<size_t>(parts) * (sizeof(float) * s.head_dim + sizeof(float2));
}

// Merges a decode launch's splits, when it has several.
template <typename T, int HD>
void launch_combine(const attn::KernelParams& kp, const AttentionBatch& b, cudaStream_t stream) {
  if (kp.splits <= 1) return;
  const dim3 grid(static_cast<unsigned>(b.n_seqs), static_cast<unsigned>(kp.num_heads));
  launch_dependent("combine_splits_kernel", attn::combine_splits_kernel<T, HD>, grid, HD, 0, stream,
                   kp);
}

// Whether a decode launch over an FP8 pool takes fp8_decode_bulk_kernel: blocks of 16 keys, at
// least kMinBulkCtas (sequence, KV head) CTAs, and not with AUTOGLM_CUDA_FP8_BULK=0 (for
// measuring against the tiled kernel; read once). Below that, the split keys leave each CTA a few
// tiles, and the bulk copies' longer start costs more than their issue saves (H200, 9B shape:
// batch 1 x 1,024 keys 7.1 us tiled, 7.7 bulk; 8 x 1,024 8.7 / 9.6; 32 x 1,024 13.3 / 13.2; 64 x
// 1,024 20.2 / 18.6; 255 x 1,500 72.1 / 59.1; docs/PERFORMANCE.md, twenty-third step).
constexpr int64_t kMinBulkCtas = 64;
bool fp8_bulk_decode(const AttentionBatch& b, const attn::KernelParams& kp) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_FP8_BULK");
  return enabled && b.block_size == attn::kBulkBlockSize &&
         int64_t{b.n_seqs} * kp.num_kv_heads * kp.row_tiles >= kMinBulkCtas;
}

template <typename T, int HD>
void launch_fp8_bulk_decode(const attn::KernelParams& kp, const AttentionBatch& b,
                            cudaStream_t stream) {
  constexpr size_t kSmem = attn::BulkDecodeSmem<HD>::bytes;
  require_shared_memory(opt_in_bulk_shared_memory<T, HD>(), kSmem);
  const dim3 grid(static_cast<unsigned>(kp.num_kv_heads), static_cast<unsigned>(b.n_seqs),
                  static_cast<unsigned>(kp.row_tiles * kp.splits));
  launch_dependent("fp8_decode_bulk_kernel", attn::fp8_decode_bulk_kernel<T, HD>, grid,
                   attn::kThreads, kSmem, stream, kp);
}

template <typename T, int HD, int ROWS, bool FP8>
void launch_tiles(const attn::KernelParams& kp, const AttentionBatch& b, cudaStream_t stream) {
  constexpr size_t kSmem = attn::Smem<T, HD, ROWS, FP8>::bytes;
  if constexpr (FP8 && ROWS == attn::kDecodeRows) {
    if (kp.seq_list == nullptr && fp8_bulk_decode(b, kp)) {
      launch_fp8_bulk_decode<T, HD>(kp, b, stream);
      launch_combine<T, HD>(kp, b, stream);
      return;
    }
  }
  require_shared_memory(opt_in_shared_memory<T, HD, ROWS, FP8>(), kSmem);
  const int32_t seqs = kp.seq_list != nullptr ? b.n_prefill_seqs : b.n_seqs;
  const dim3 grid(static_cast<unsigned>(kp.num_kv_heads), static_cast<unsigned>(seqs),
                  static_cast<unsigned>(kp.row_tiles * kp.splits));
  launch_dependent("paged_attention_kernel", attn::paged_attention_kernel<T, HD, ROWS, FP8>, grid,
                   attn::kThreads, kSmem, stream, kp);
  launch_combine<T, HD>(kp, b, stream);
}

template <typename T, int HD, bool FP8>
void launch_rows(const attn::KernelParams& kp, const AttentionBatch& b, int rows,
                 cudaStream_t stream) {
  if (rows == attn::kDecodeRows) {
    launch_tiles<T, HD, attn::kDecodeRows, FP8>(kp, b, stream);
  } else if (rows == attn::kShortPrefillRows) {
    launch_tiles<T, HD, attn::kShortPrefillRows, FP8>(kp, b, stream);
  } else {
    launch_tiles<T, HD, attn::kPrefillRows, FP8>(kp, b, stream);
  }
}

template <typename T, bool FP8>
void launch_typed(const attn::KernelParams& kp, const AttentionBatch& b, int head_dim, int rows,
                  cudaStream_t stream) {
  head_dim == 64 ? launch_rows<T, 64, FP8>(kp, b, rows, stream)
                 : launch_rows<T, 128, FP8>(kp, b, rows, stream);
}

}  // namespace

// Not the exact need of this batch's split plan but a bound that grows only with n_seqs and
// max_context_len (plan() keeps n_seqs * splits <= min(n_seqs * min(kMaxSplits, by_len),
// max(one wave of decode CTAs + n_seqs, kMaxWaveSplits * n_seqs))), so a workspace sized once from
// the largest allowed batch (whatever its max_query_len) covers every later step, decode steps with
// few sequences included.
size_t paged_attention_workspace_bytes(const AttentionBatch& batch, const AttentionShape& shape) {
  validate(batch, shape, /*sizing=*/true);
  const int64_t n_seqs = batch.n_seqs;
  const int64_t by_len =
      (int64_t{std::max(batch.max_context_len, 0)} + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const int64_t splits_per_seq = std::min<int64_t>(kMaxSplits, by_len);
  if (n_seqs <= 0 || splits_per_seq <= 1) return 0;
  const int64_t seq_splits =
      std::min(n_seqs * splits_per_seq,
               std::max(wave_of<attn::kDecodeRows>(shape) + n_seqs, kMaxWaveSplits * n_seqs));
  const size_t bound = static_cast<size_t>(seq_splits * shape.num_heads) *
                       (sizeof(float) * static_cast<size_t>(shape.head_dim) + sizeof(float2));
  AttentionBatch as_decode = batch;  // the plan that needs a workspace at all
  as_decode.max_query_len = 1;
  return std::max(bound,
                  workspace_for(plan(as_decode, shape, batch.n_seqs, batch.n_seqs), n_seqs, shape));
}

void paged_attention(const AttentionBatch& batch, const AttentionShape& shape, const void* q,
                     PagedKvLayer kv, void* out, void* workspace, size_t workspace_bytes,
                     ActType type, cudaStream_t stream) {
  validate(batch, shape);
  if (batch.n_tokens == 0 || batch.n_seqs == 0) return;
  if (!q || !out || !kv.k || !kv.v || !batch.seq_start || !batch.context_len ||
      !batch.block_table) {
    reject("null pointer");
  }
  if (!aligned_to(q, 16) || !aligned_to(out, 16) || !aligned_to(kv.k, 16) ||
      !aligned_to(kv.v, 16)) {
    reject("q, out and the KV pool must be 16-byte aligned");
  }
  if (batch.prefill_rows != 0 && batch.prefill_rows != attn::kShortPrefillRows &&
      batch.prefill_rows != attn::kPrefillRows) {
    reject("prefill_rows " + std::to_string(batch.prefill_rows) + " (0, 64 or 128)");
  }
  if (batch.n_prefill_seqs < 0 || batch.n_prefill_seqs > batch.n_seqs) {
    reject("n_prefill_seqs " + std::to_string(batch.n_prefill_seqs) + " of " +
           std::to_string(batch.n_seqs) + " sequences");
  }
  // A mixed step with its prefill sequences listed: two launches, the decode kernel over the
  // one-token sequences (their own split plan) and the prefill kernel over the listed ones.
  const bool split_mixed = batch.prefill_seqs != nullptr && batch.max_query_len > 1 &&
                           batch.n_prefill_seqs > 0 && batch.n_prefill_seqs < batch.n_seqs;
  AttentionBatch decode_part = batch;
  decode_part.max_query_len = 1;
  // A split launch's prefill tokens: all but the decode sequences' one each.
  const int64_t prefill_tokens =
      split_mixed ? int64_t{batch.n_tokens} - (batch.n_seqs - batch.n_prefill_seqs)
                  : batch.n_tokens;
  const Plan p =
      plan(batch, shape, split_mixed ? batch.n_prefill_seqs : batch.n_seqs, prefill_tokens);
  const Plan dp = split_mixed ? plan(decode_part, shape, batch.n_seqs, batch.n_seqs) : p;
  const size_t needed = workspace_for(dp, batch.n_seqs, shape);
  if (needed > 0 && (workspace == nullptr || workspace_bytes < needed)) {
    reject("workspace of " + std::to_string(workspace_bytes) + " bytes, " + std::to_string(needed) +
           " needed (paged_attention_workspace_bytes)");
  }
  for (const Plan* each : {&p, &dp}) {
    if (int64_t{each->row_tiles} * each->splits > 65535 || batch.n_seqs > 65535) {
      reject("query too long or too many sequences for one launch");
    }
  }

  const auto params = [&](const Plan& plan_of_launch) {
    attn::KernelParams kp;
    kp.batch = batch;
    kp.q = q;
    kp.k_cache = kv.k;
    kp.v_cache = kv.v;
    kp.out = out;
    if (plan_of_launch.splits > 1) {
      const int64_t parts = int64_t{batch.n_seqs} * shape.num_heads * plan_of_launch.splits;
      kp.partial_acc = static_cast<float*>(workspace);
      kp.partial_ml = reinterpret_cast<float2*>(kp.partial_acc + parts * shape.head_dim);
    }
    kp.num_heads = shape.num_heads;
    kp.num_kv_heads = shape.num_kv_heads;
    kp.group = shape.num_heads / shape.num_kv_heads;
    kp.scale_log2 = shape.scale * static_cast<float>(M_LOG2E);
    kp.row_tiles = plan_of_launch.row_tiles;
    kp.splits = plan_of_launch.splits;
    kp.split_len = plan_of_launch.split_len;
    kp.late_trigger = late_trigger_at(batch.n_tokens);
    kp.kv_before_wait = plan_of_launch.decode && !shape.kv_fp8 && kv_before_wait_at(batch.n_tokens);
    if ((batch.block_size & (batch.block_size - 1)) == 0)
      kp.block_shift = std::countr_zero(static_cast<uint32_t>(batch.block_size));
    return kp;
  };
  const auto launch = [&](const Plan& plan_of_launch, const int32_t* seq_list) {
    attn::KernelParams kp = params(plan_of_launch);
    kp.seq_list = seq_list;
    const int rows = plan_of_launch.rows;
    const bool bf16 = type == ActType::kBF16;
    if (shape.kv_fp8) {
      bf16 ? launch_typed<__nv_bfloat16, true>(kp, batch, shape.head_dim, rows, stream)
           : launch_typed<__half, true>(kp, batch, shape.head_dim, rows, stream);
    } else {
      bf16 ? launch_typed<__nv_bfloat16, false>(kp, batch, shape.head_dim, rows, stream)
           : launch_typed<__half, false>(kp, batch, shape.head_dim, rows, stream);
    }
  };
  if (split_mixed) {
    launch(dp, nullptr);
    launch(p, batch.prefill_seqs);
  } else {
    launch(p, nullptr);
  }
}

}  // namespace autoglm::cuda
