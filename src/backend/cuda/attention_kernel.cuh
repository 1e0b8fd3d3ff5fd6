// The tiled paged-attention kernel behind paged_attention (attention.cu). One CTA owns a tile of
// "rows" = (query token, query head) pairs of one sequence that share one KV head (GQA packing:
// row r is token r / group, head kv_head * group + r % group), and one slice of that sequence's
// keys. It walks the slice in tiles of kKeyTile keys read through the block table, computes
// scores and P*V on the tensor cores (WMMA, fp32 accumulation) and keeps an online softmax per
// row in fp32. With one split it writes the normalised output; with several (decode,
// flash-decoding) it writes unnormalised partials that combine_splits_kernel merges.
// Thread ownership: device code, launched by the engine thread through attention.cu.
#pragma once

// With clang as nvcc's host compiler, CUDA's fp16/bf16 headers define static functions that
// -Wunused-function (made an error by -Werror) flags; they are not ours to fix.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#include <cstddef>
#include <cstdint>

#include "backend/cuda/attention.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/pdl.cuh"

namespace autoglm::cuda::attn {

constexpr int kThreads = 128;  // four warps per CTA
constexpr int kWarps = kThreads / 32;
constexpr int kKeyTile = 64;      // keys per pass over shared memory
constexpr int kDecodeRows = 16;   // rows per CTA when every sequence decodes one token
constexpr int kPrefillRows = 64;  // rows per CTA for prefill chunks and mixed batches

struct KernelParams {
  AttentionBatch batch;  // device pointers and host-side scalars, as the caller gave them
  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  float* partial_acc = nullptr;  // [n_seqs * num_heads * splits][head_dim] when splits > 1
  float2* partial_ml = nullptr;  // [n_seqs * num_heads * splits] (max in log2 units, sum)
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t group = 0;        // num_heads / num_kv_heads
  float scale_log2 = 0.0f;  // scale * log2(e): the softmax runs on exp2
  int32_t row_tiles = 1;    // grid.z = row_tiles * splits
  int32_t splits = 1;
  int32_t split_len = 0;  // keys per split, a multiple of kKeyTile
};

constexpr size_t align128(size_t bytes) {
  return (bytes + 127) / 128 * 128;
}

// Shared-memory carve-up. Rows are padded by 16 bytes (8 halves / 4 floats) so that WMMA
// loads and the row-wise softmax do not hit one bank; every region and every 16-row fragment
// start stays 32-byte aligned as WMMA requires.
template <typename T, int HD, int ROWS>
struct Smem {
  static constexpr int kQkv = HD + 8;      // T per row of Q, K and V
  static constexpr int kS = kKeyTile + 4;  // floats per score row
  static constexpr int kP = kKeyTile + 8;  // T per probability row
  static constexpr int kO = HD + 4;        // floats per output-accumulator row
  static constexpr size_t q = 0;
  static constexpr size_t k = align128(q + sizeof(T) * ROWS * kQkv);
  static constexpr size_t v = align128(k + sizeof(T) * kKeyTile * kQkv);
  static constexpr size_t s = align128(v + sizeof(T) * kKeyTile * kQkv);
  static constexpr size_t p = align128(s + sizeof(float) * ROWS * kS);
  static constexpr size_t o = align128(p + sizeof(T) * ROWS * kP);
  static constexpr size_t pos = align128(o + sizeof(float) * ROWS * kO);
  static constexpr size_t m = align128(pos + sizeof(int) * ROWS);
  static constexpr size_t l = align128(m + sizeof(float) * ROWS);
  static constexpr size_t bytes = align128(l + sizeof(float) * ROWS);
};

__device__ inline float warp_max(float x) {
  for (int o = 16; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ inline float warp_sum(float x) {
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// One key tile's K and V rows held in registers between the global load and the shared-memory
// store, so that the next tile's loads are in flight while this tile's math runs.
template <int HD>
struct KvTileRegs {
  static constexpr int kChunks = HD / 8;  // 16-byte chunks per key row
  static constexpr int kPerThread = kKeyTile * kChunks / kThreads;
  static_assert(kKeyTile * kChunks % kThreads == 0, "tile must split evenly over threads");
  uint4 k[kPerThread];
  uint4 v[kPerThread];
};

// Loads keys [tile0, tile0 + kKeyTile) of `seq` through the block table; keys at or past `kend`
// become zeros so that no stale (possibly NaN) data meets a zero probability.
template <typename T, int HD>
__device__ inline void fetch_kv_tile(const KernelParams& p, int kv_head, int seq, int tile0,
                                     int kend, KvTileRegs<HD>& regs) {
  using R = KvTileRegs<HD>;
  const int32_t* blocks = p.batch.block_table + int64_t{seq} * p.batch.max_blocks_per_seq;
  const int bs = p.batch.block_size;
  const int64_t row_elems = int64_t{p.num_kv_heads} * HD;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
#pragma unroll
  for (int j = 0; j < R::kPerThread; ++j) {
    const int i = threadIdx.x + j * kThreads;
    const int key = tile0 + i / R::kChunks;
    regs.k[j] = make_uint4(0, 0, 0, 0);
    regs.v[j] = regs.k[j];
    if (key < kend) {
      const int64_t slot = int64_t{blocks[key / bs]} * bs + key % bs;
      const int64_t off = slot * row_elems + int64_t{kv_head} * HD + (i % R::kChunks) * 8;
      regs.k[j] = *reinterpret_cast<const uint4*>(kc + off);
      regs.v[j] = *reinterpret_cast<const uint4*>(vc + off);
    }
  }
}

template <typename T, int HD>
__device__ inline void stash_kv_tile(const KvTileRegs<HD>& regs, T* k_s, T* v_s, int ld) {
  using R = KvTileRegs<HD>;
#pragma unroll
  for (int j = 0; j < R::kPerThread; ++j) {
    const int i = threadIdx.x + j * kThreads;
    const int at = (i / R::kChunks) * ld + (i % R::kChunks) * 8;
    *reinterpret_cast<uint4*>(k_s + at) = regs.k[j];
    *reinterpret_cast<uint4*>(v_s + at) = regs.v[j];
  }
}

// s_s[ROWS][kKeyTile] = q_s * k_s^T (unscaled), fp32.
template <typename T, int HD, int ROWS>
__device__ inline void tile_scores(const T* q_s, const T* k_s, float* s_s) {
  using namespace nvcuda;
  using L = Smem<T, HD, ROWS>;
  constexpr int kKeyFrags = kKeyTile / 16;
  const int warp = threadIdx.x / 32;
  for (int f = warp; f < (ROWS / 16) * kKeyFrags; f += kWarps) {
    const int rf = f / kKeyFrags;
    const int kf = f % kKeyFrags;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int d = 0; d < HD; d += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;  // K^T
      wmma::load_matrix_sync(a, q_s + rf * 16 * L::kQkv + d, L::kQkv);
      wmma::load_matrix_sync(b, k_s + kf * 16 * L::kQkv + d, L::kQkv);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(s_s + rf * 16 * L::kS + kf * 16, acc, L::kS, wmma::mem_row_major);
  }
}

// Online-softmax step, one warp per row: masks keys past the row's causal limit, turns scores
// into probabilities p_s (rounded to T, and the row sum taken over the rounded values so that
// numerator and denominator agree), and rescales the row's accumulator by exp2(m_old - m_new).
template <typename T, int HD, int ROWS>
__device__ inline void tile_softmax(const float* s_s, T* p_s, float* o_s, const int* pos_s,
                                    float* m_s, float* l_s, int tile0, int kend, float scale_log2) {
  using L = Smem<T, HD, ROWS>;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  for (int r = warp; r < ROWS; r += kWarps) {
    const int limit = min(pos_s[r] + 1, kend);  // keys below `limit` are visible to this row
    float s[kKeyTile / 32];
    float tile_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < kKeyTile / 32; ++i) {
      const int c = lane + 32 * i;
      s[i] = tile0 + c < limit ? s_s[r * L::kS + c] * scale_log2 : -INFINITY;
      tile_max = fmaxf(tile_max, s[i]);
    }
    tile_max = warp_max(tile_max);
    const float m_old = m_s[r];
    const float m_new = fmaxf(m_old, tile_max);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kKeyTile / 32; ++i) {
      const T prob = from_f32<T>(exp2f(s[i] - m_use));
      p_s[r * L::kP + lane + 32 * i] = prob;
      sum += to_f32(prob);
    }
    sum = warp_sum(sum);  // also orders every lane's read of m_s[r] before lane 0 writes it
    const float alpha = exp2f(m_old - m_use);  // 0 while m_old is still -inf
    for (int d = lane; d < HD; d += 32) o_s[r * L::kO + d] *= alpha;
    if (lane == 0) {
      m_s[r] = m_new;
      l_s[r] = l_s[r] * alpha + sum;
    }
  }
}

// o_s[ROWS][HD] += p_s[ROWS][kKeyTile] * v_s[kKeyTile][HD], fp32 accumulators kept in smem.
template <typename T, int HD, int ROWS>
__device__ inline void tile_accumulate(const T* p_s, const T* v_s, float* o_s) {
  using namespace nvcuda;
  using L = Smem<T, HD, ROWS>;
  constexpr int kOutFrags = HD / 16;
  const int warp = threadIdx.x / 32;
  for (int f = warp; f < (ROWS / 16) * kOutFrags; f += kWarps) {
    const int rf = f / kOutFrags;
    const int of = f % kOutFrags;
    float* o_tile = o_s + rf * 16 * L::kO + of * 16;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, o_tile, L::kO, wmma::mem_row_major);
#pragma unroll
    for (int k = 0; k < kKeyTile; k += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
      wmma::load_matrix_sync(a, p_s + rf * 16 * L::kP + k, L::kP);
      wmma::load_matrix_sync(b, v_s + k * L::kQkv + of * 16, L::kQkv);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(o_tile, acc, L::kO, wmma::mem_row_major);
  }
}

// Q rows of this tile into q_s (zeros past the last row), causal positions, softmax state.
template <typename T, int HD, int ROWS>
__device__ inline void load_rows(const KernelParams& p, int kv_head, int first_token, int qlen,
                                 int ctx, int row0, int nrows, T* q_s, int* pos_s, float* m_s,
                                 float* l_s, float* o_s) {
  using L = Smem<T, HD, ROWS>;
  constexpr int kChunks = HD / 8;
  const T* q = static_cast<const T*>(p.q);
  for (int i = threadIdx.x; i < ROWS * kChunks; i += kThreads) {
    const int r = i / kChunks;
    const int row = row0 + r;
    uint4 chunk = make_uint4(0, 0, 0, 0);
    if (row < nrows) {
      const int64_t token = first_token + row / p.group;
      const int head = kv_head * p.group + row % p.group;
      chunk = reinterpret_cast<const uint4*>(q + (token * p.num_heads + head) * HD)[i % kChunks];
    }
    *reinterpret_cast<uint4*>(q_s + r * L::kQkv + (i % kChunks) * 8) = chunk;
  }
  for (int r = threadIdx.x; r < ROWS; r += kThreads) {
    const int row = row0 + r;
    pos_s[r] = row < nrows ? ctx - qlen + row / p.group : -1;  // -1: padding row, sees nothing
    m_s[r] = -INFINITY;
    l_s[r] = 0.0f;
  }
  for (int i = threadIdx.x; i < ROWS * L::kO; i += kThreads) o_s[i] = 0.0f;
}

// Normalised output (one split) or unnormalised partials for combine_splits_kernel.
template <typename T, int HD, int ROWS>
__device__ inline void store_rows(const KernelParams& p, int kv_head, int seq, int split,
                                  int first_token, int row0, int nrows, const float* o_s,
                                  const float* m_s, const float* l_s) {
  using L = Smem<T, HD, ROWS>;
  T* out = static_cast<T*>(p.out);
  for (int i = threadIdx.x; i < ROWS * HD; i += kThreads) {
    const int r = i / HD;
    const int d = i % HD;
    const int row = row0 + r;
    if (row >= nrows) break;  // rows only grow with i
    const int64_t token = first_token + row / p.group;
    const int head = kv_head * p.group + row % p.group;
    const float acc = o_s[r * L::kO + d];
    if (p.splits == 1) {
      const float l = l_s[r];
      out[(token * p.num_heads + head) * HD + d] = from_f32<T>(l > 0.0f ? acc / l : 0.0f);
    } else {
      const int64_t part = (int64_t{seq} * p.num_heads + head) * p.splits + split;
      p.partial_acc[part * HD + d] = acc;
      if (d == 0) p.partial_ml[part] = make_float2(m_s[r], l_s[r]);
    }
  }
}

// grid (num_kv_heads, n_seqs, row_tiles * splits), kThreads threads, Smem<...>::bytes dynamic.
template <typename T, int HD, int ROWS>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(const KernelParams p) {
  wait_for_previous_kernel();
  static_assert(ROWS % 16 == 0 && HD % 16 == 0, "WMMA tiles are 16 x 16");
  using L = Smem<T, HD, ROWS>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_s = reinterpret_cast<T*>(smem + L::q);
  T* k_s = reinterpret_cast<T*>(smem + L::k);
  T* v_s = reinterpret_cast<T*>(smem + L::v);
  float* s_s = reinterpret_cast<float*>(smem + L::s);
  T* p_s = reinterpret_cast<T*>(smem + L::p);
  float* o_s = reinterpret_cast<float*>(smem + L::o);
  int* pos_s = reinterpret_cast<int*>(smem + L::pos);
  float* m_s = reinterpret_cast<float*>(smem + L::m);
  float* l_s = reinterpret_cast<float*>(smem + L::l);

  const int kv_head = blockIdx.x;
  const int seq = blockIdx.y;
  const int row_tile = blockIdx.z % p.row_tiles;
  const int split = blockIdx.z / p.row_tiles;
  const int first_token = p.batch.seq_start[seq];
  const int qlen = p.batch.seq_start[seq + 1] - first_token;
  const int ctx = p.batch.context_len[seq];
  const int nrows = qlen * p.group;
  const int row0 = row_tile * ROWS;
  if (row0 >= nrows) return;  // this sequence has fewer query rows than the longest one
  const int last_pos = ctx - qlen + (min(nrows, row0 + ROWS) - 1) / p.group;
  const int kbeg = split * p.split_len;
  const int kend = min(min(ctx, kbeg + p.split_len), last_pos + 1);
  if (kbeg >= kend) return;  // a split past this sequence's context: the combine skips it

  load_rows<T, HD, ROWS>(p, kv_head, first_token, qlen, ctx, row0, nrows, q_s, pos_s, m_s, l_s,
                         o_s);
  KvTileRegs<HD> regs;
  fetch_kv_tile<T, HD>(p, kv_head, seq, kbeg, kend, regs);
  for (int tile0 = kbeg; tile0 < kend; tile0 += kKeyTile) {
    stash_kv_tile<T, HD>(regs, k_s, v_s, L::kQkv);
    __syncthreads();  // K/V (and on the first pass Q, O, row state) visible to all warps
    if (tile0 + kKeyTile < kend)
      fetch_kv_tile<T, HD>(p, kv_head, seq, tile0 + kKeyTile, kend, regs);
    tile_scores<T, HD, ROWS>(q_s, k_s, s_s);
    __syncthreads();
    tile_softmax<T, HD, ROWS>(s_s, p_s, o_s, pos_s, m_s, l_s, tile0, kend, p.scale_log2);
    __syncthreads();
    tile_accumulate<T, HD, ROWS>(p_s, v_s, o_s);
    __syncthreads();  // before the next tile overwrites K/V/S/P and before the final store
  }
  store_rows<T, HD, ROWS>(p, kv_head, seq, split, first_token, row0, nrows, o_s, m_s, l_s);
}

// Merges the splits of decode rows: grid (n_seqs, num_heads), HD threads (one per element).
template <typename T, int HD>
__global__ void __launch_bounds__(HD) combine_splits_kernel(const KernelParams p) {
  wait_for_previous_kernel();
  const int seq = blockIdx.x;
  const int head = blockIdx.y;
  const int d = threadIdx.x;
  const int token = p.batch.seq_start[seq];
  if (p.batch.seq_start[seq + 1] - token != 1) return;  // decode route: one token a sequence
  const int ctx = p.batch.context_len[seq];
  const int used = min(p.splits, (ctx + p.split_len - 1) / p.split_len);
  const int64_t base = (int64_t{seq} * p.num_heads + head) * p.splits;
  float m = -INFINITY;
  for (int i = 0; i < used; ++i) m = fmaxf(m, p.partial_ml[base + i].x);
  float acc = 0.0f;
  float l = 0.0f;
  for (int i = 0; i < used; ++i) {
    const float2 ml = p.partial_ml[base + i];
    const float w = exp2f(ml.x - m);
    acc += w * p.partial_acc[(base + i) * HD + d];
    l += w * ml.y;
  }
  T* out = static_cast<T*>(p.out);
  out[(int64_t{token} * p.num_heads + head) * HD + d] = from_f32<T>(l > 0.0f ? acc / l : 0.0f);
}

}  // namespace autoglm::cuda::attn
