// One-token decode over an FP8 pool of 16-key blocks, with each warp streaming its own keys by
// bulk copies (the paged_attention_kernel decode instantiation for this case). Same work split
// as that kernel's decode CTA: 16 query rows of one KV head, four warps each scoring a quarter of
// the keys (16-key runs w, w + 4, ... of the CTA's split), softmax states merged at the end; the
// same warp_tile arithmetic, so the results are the same bits.
// What differs is how the keys arrive. A 16-key run is one pool block of one KV head: 16 HD
// bytes of K and as many of V, each contiguous (attention.h). Lane 0 starts one cp.async.bulk of
// each, counted by the warp's mbarrier for that stage, and the warp waits on the barrier alone.
// So there is no per-thread 16-byte copy issue, no per-copy block-table entries and no CTA
// barrier per tile: those were about a third of the previous kernel's instructions a tile
// (docs/PERFORMANCE.md, twenty-second step), on a path that is latency-bound per warp. Q goes
// straight from global memory into the warps' held A fragments.
// Thread ownership: device code, launched by the engine thread through attention.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/attention_kernel.cuh"

namespace autoglm::cuda::attn {

// The block size this kernel takes: one block is one warp's 16-key run.
constexpr int kBulkBlockSize = 16;

// ---- mbarrier and bulk-copy wrappers (sm_90) ------------------------------------------------

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count)
               : "memory");
}

// Makes the initialised barriers visible to the async proxy that completes them.
__device__ __forceinline__ void fence_barrier_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// Orders this thread's earlier generic shared-memory accesses before later bulk copies into it.
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)),
               "r"(bytes)
               : "memory");
#endif
}

__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n\t.reg .pred done;\n"
      "wait:\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n\t"
      "@!done bra wait;\n\t}" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
#endif
}

// `bytes` (a multiple of 16) global -> shared, counted on `bar` when they land.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes,
                                          uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::
          "r"(smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
#endif
}

// ---- layout -----------------------------------------------------------------------------------

// Shared memory: per warp kStages stages of one 16-key run (K rows, then the V block), then the
// stages' mbarriers; the merge of the warps' states reuses the stage region after the loop. Both
// halves are the pool's bytes as they stand (attention.h): K rows of HD bytes with their chunks
// permuted by the key (the eight keys one load instruction reads find their chunk in eight bank
// groups), V rows of a dim's 16 keys (the eight dims of a load are 128 consecutive bytes).
template <int HD>
struct BulkDecodeSmem {
  using QT = __half;
  static constexpr int kHeadDim = HD;
  static constexpr bool kFp8 = true;
  static constexpr int kLd = HD + 8;  // warp_tile's Q stride; Q is held in registers here
  static constexpr int kStages = 3;
  static constexpr size_t k_bytes = size_t{kBulkBlockSize} * HD;
  static constexpr size_t v_bytes = size_t{HD} * kBulkBlockSize;
  static constexpr size_t stage = k_bytes + v_bytes;
  static constexpr size_t warp_stages = kStages * stage;
  static constexpr size_t tiles_end = kWarps * warp_stages;
  static constexpr int kMergeLd = HD + 4;
  static constexpr size_t merge_o = 0;
  static constexpr size_t merge_ml = align128(merge_o + sizeof(float) * kWarps * 16 * kMergeLd);
  static constexpr size_t merge_end = merge_ml + sizeof(float2) * kWarps * 16;
  static constexpr size_t bars = align128(tiles_end > merge_end ? tiles_end : merge_end);
  static constexpr size_t bytes = bars + sizeof(uint64_t) * kWarps * kStages;
  static_assert(k_bytes % 16 == 0 && stage % 16 == 0, "bulk-copy destinations 16-byte aligned");

  __device__ static int k_at(int key, int chunk) {
    return key * HD + fp8_k_chunk_at(key, chunk, HD) * 16;
  }
  __device__ static int v_at(int dim, int /*run*/) { return dim * kBulkBlockSize; }
};

// Q's A fragments straight from global memory: lane (g, c) = (lane / 4, lane % 4) holds rows g
// and g + 8, dims 4c..4c+3 of every 16 (fp8_q_column's order, as load_q_rows + load_held_q
// would leave them), in FP16 saturated to its range. Rows past nrows are zeros.
template <typename T, int HD>
__device__ __forceinline__ void load_held_q_global(const KernelParams& p, int kv_head,
                                                   int first_token, int row0, int nrows,
                                                   HeldQ<HD>& q) {
  const int lane = threadIdx.x % 32;
  const T* base[2] = {nullptr, nullptr};
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = row0 + lane / 4 + 8 * half;
    if (row < nrows) {
      const int64_t token = first_token + row / p.group;
      const int head = kv_head * p.group + row % p.group;
      base[half] = static_cast<const T*>(p.q) + (token * p.num_heads + head) * HD + 4 * (lane % 4);
    }
  }
  uint2 raw[HD / 16][2];
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      raw[kk][half] = base[half] != nullptr ? *reinterpret_cast<const uint2*>(base[half] + kk * 16)
                                            : make_uint2(0, 0);
    }
  }
  const auto to_half2 = [](uint32_t two) {
    const T* e = reinterpret_cast<const T*>(&two);
    const __half2 h = q_pair_as_half2(e[0], e[1]);
    return *reinterpret_cast<const uint32_t*>(&h);
  };
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    q.f[kk][0] = to_half2(raw[kk][0].x);  // row g, dims 4c, 4c + 1
    q.f[kk][1] = to_half2(raw[kk][1].x);  // row g + 8
    q.f[kk][2] = to_half2(raw[kk][0].y);  // row g, dims 4c + 2, 4c + 3
    q.f[kk][3] = to_half2(raw[kk][1].y);
  }
}

// grid (num_kv_heads, n_seqs, row_tiles * splits), kThreads threads, BulkDecodeSmem<HD>::bytes.
// Held to 128 registers, four CTAs an SM, as the decode instantiation it replaces (attention.cu's
// split plan counts on the same occupancy).
template <typename T, int HD>
__global__ void __launch_bounds__(kThreads, 4) fp8_decode_bulk_kernel(const KernelParams p) {
  using L = BulkDecodeSmem<HD>;
  wait_for_previous_kernel();
  extern __shared__ __align__(128) unsigned char smem[];
  const int kv_head = blockIdx.x;
  const auto [seq, split, first_token, qlen, ctx, nrows, row0] = cta_work(p, kDecodeRows);
  if (row0 >= nrows || qlen > 1) return;  // a prefill chunk of a mixed step: not this launch's
  const int kbeg = split * p.split_len;
  const int kend = min(ctx, kbeg + p.split_len);
  if (kbeg >= kend) return;  // a split past this sequence's context: the combine skips it

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem + L::bars) + warp * L::kStages;
  if (lane < L::kStages) mbar_init(&bars[lane], 1);
  fence_barrier_init();
  __syncwarp();

  // This warp's runs: keys [kbeg + 16 (warp + 4 j), + 16) for j < runs.
  constexpr int kRunKeys = kBulkBlockSize;
  const int all_runs = (kend - kbeg + kRunKeys - 1) / kRunKeys;
  const int runs = (all_runs - warp + kWarps - 1) / kWarps;
  const auto run_key = [&](int j) { return kbeg + kRunKeys * (warp + kWarps * j); };
  const int32_t* blocks = p.batch.block_table + int64_t{seq} * p.batch.max_blocks_per_seq;
  const auto entry_of = [&](int j) { return j < runs ? blocks[run_key(j) / kRunKeys] : 0; };
  // A run's K and V are two contiguous pieces of 16 HD bytes at the same offset of their pools.
  const uint8_t* k_src = static_cast<const uint8_t*>(p.k_cache);
  const uint8_t* v_src = static_cast<const uint8_t*>(p.v_cache);
  constexpr uint32_t kRunBytes = uint32_t{kRunKeys} * HD;
  unsigned char* warp_tiles = smem + warp * L::warp_stages;
  const auto issue = [&](int stage, int32_t entry) {
    if (lane == 0) {
      unsigned char* k_s = warp_tiles + stage * L::stage;
      const uint64_t at =
          (static_cast<uint64_t>(static_cast<uint32_t>(entry)) * p.num_kv_heads + kv_head) *
          kRunBytes;
      mbar_arrive_expect_tx(&bars[stage], 2 * kRunBytes);
      bulk_copy(k_s, k_src + at, kRunBytes, &bars[stage]);
      bulk_copy(k_s + L::k_bytes, v_src + at, kRunBytes, &bars[stage]);
    }
  };
#pragma unroll
  for (int j = 0; j < L::kStages; ++j) {
    if (j < runs) issue(j, entry_of(j));
  }
  int32_t next_entry = entry_of(L::kStages);  // in flight while the first runs are computed

  HeldQ<HD> held_q;
  load_held_q_global<T, HD>(p, kv_head, first_token, row0, nrows, held_q);
  RowState<HD, 1> st;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + lane / 4 + 8 * h;
    st.m[h] = -INFINITY;
    st.l[h] = 0.0f;
    st.limit[h] = row < nrows ? kend : 0;
  }

  for (int j = 0; j < runs; ++j) {
    const int stage = j % L::kStages;
    unsigned char* k_s = warp_tiles + stage * L::stage;
    unsigned char* v_s = k_s + L::k_bytes;
    const int key0 = run_key(j);
    mbar_wait(&bars[stage], (j / L::kStages) & 1);
    if (key0 + kRunKeys > kend) {
      // The last run of the context: its block's later slots may hold anything (NaN too), and a
      // zero probability times NaN is NaN, so the V bytes of keys at or past kend become zeros
      // (their scores are masked). Lane l clears word (l % 4) of dims l / 4 + 8 i.
      const int valid = kend - key0;
      const int word = lane % 4;
      const int lo = max(0, min(4, valid - 4 * word));  // valid bytes in this lane's word
      const uint32_t keep = lo >= 4 ? 0xffffffffu : (1u << (8 * lo)) - 1u;
#pragma unroll
      for (int i = 0; i < HD / 8; ++i) {
        uint32_t* w = reinterpret_cast<uint32_t*>(v_s + L::v_at(lane / 4 + 8 * i, 0)) + word;
        *w &= keep;
      }
      __syncwarp();
    }
    warp_tile<L, kRunKeys, 1>(nullptr, held_q, k_s, v_s, 0, key0, p.scale_log2, st);
    if (j + L::kStages < runs) {
      __syncwarp();         // every lane is done reading this stage ...
      fence_proxy_async();  // ... before the bulk copies overwrite it
      issue(stage, next_entry);
      next_entry = entry_of(j + L::kStages + 1);
    }
  }
  if (p.late_trigger) allow_next_kernel();  // every K/V load of this block has been used
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // the row sums over the four lanes of a row
    st.l[h] += __shfl_xor_sync(0xffffffffu, st.l[h], 1);
    st.l[h] += __shfl_xor_sync(0xffffffffu, st.l[h], 2);
  }
  merge_and_store<L, T, HD>(p, seq, split, first_token, row0, nrows, smem, st);
}

}  // namespace autoglm::cuda::attn
