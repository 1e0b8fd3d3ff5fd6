// See gemv.h. Work split: a block of 256 threads owns kRowsPerBlock rows of W (consecutive, or
// paired for the fused epilogues: weight_row), and its threads sweep K together in 16-byte chunks
// (8 elements), thread t taking chunks t, t + 256, ... of every owned row, so that each warp load
// is 512 contiguous bytes of one row. The chunk of x at the same position is loaded once per
// chunk and reused for all the owned rows, which keeps x's traffic (from L1: it is small and every
// block reads all of it) at m / 4 of W's. W is read with L1::no_allocate so that streaming it does
// not evict x. Each thread issues kRowsPerBlock * kChunksInFlight 16-byte loads of W before it
// uses any of them. At the end, every (x row, W row) partial sum is reduced over the warp by
// shuffles, then over the 8 warps in shared memory, and warp 0 finishes the outputs, one lane
// each: bias (loaded at the start), then a store, or the SwiGLU / RoPE epilogue with the pair
// partner's lane. The grid has one block per kRowsPerBlock rows: 1,024 blocks for a 4096-row
// matrix, ~2 waves of the 4 blocks per SM that 64 registers allow at m = 1 (a block lives for
// about one or two memory round trips at K = 4096). Once a block has used its last loads it lets
// the next kernel launch (allow_next_kernel, pdl.cuh), so the next kernel's blocks fill this
// one's slots as it drains; the one-token QKV and gate_up GEMVs do so at their start (pdl.cuh).
// Thread ownership: see gemv.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <limits>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/elementwise_math.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/gemv_loads.cuh"
#include "backend/cuda/kv_store.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerBlock = 4;
constexpr int kChunksInFlight = 2;  // per row and thread, loaded before the first is used

// What a block does with its finished sums (see gemv.h for the contracts).
enum class Epilogue {
  kStore,    // y[m][row] = sum + bias
  kSwiGLU,   // rows j of the gate half and j of the up half pair up: y[m][j] = silu(g) * u
  kRopeQkv,  // q, k, v of one token: rotate q and k pairs, write q and the KV pool rows
};

template <typename T, typename OutT>
struct GemvArgs {
  const T* x;
  const T* w;
  const OutT* bias;  // nullptr: no bias
  OutT* y;           // kStore, kSwiGLU
  int64_t n;         // rows of W
  int64_t k;
  bool vectorised;     // k % 8 == 0 and x, w 16-byte aligned
  bool late_trigger;   // allow_next_kernel() once the sweep is done (pdl.cuh)
  bool start_trigger;  // ... at the block's start instead (pdl.cuh: qkv_, swiglu_trigger_at_start)
  // kRopeQkv: the layout, row m's position and the tables, q and the KV destination.
  QkvLayout qkv;
  const int32_t* positions;
  const float* rope_cos;
  const float* rope_sin;
  T* q;
  KvDestination kv;
};

// The W row that a block's r-th row slot reads. kStore: kRowsPerBlock consecutive rows. kSwiGLU:
// outputs j and j + 1 of both halves, so each gate sum meets its up sum in the block. kRopeQkv:
// consecutive rows for GLM's adjacent pairs; for NeoX halves, rows j, j + 1, j + rot / 2 and
// j + 1 + rot / 2 of a head's rotary part (the rest of the head in runs of four).
template <Epilogue E, typename Args>
__device__ __forceinline__ int64_t weight_row(const Args& a, int64_t block, int r) {
  if constexpr (E == Epilogue::kSwiGLU) {
    const int64_t out = block * 2 + (r & 1);
    return out < a.n / 2 ? out + (r >> 1) * (a.n / 2) : a.n;  // a.n: past the end
  } else if constexpr (E == Epilogue::kRopeQkv) {
    if (a.qkv.interleaved) return block * kRowsPerBlock + r;
    const int64_t groups = a.qkv.head_dim / kRowsPerBlock;
    const int64_t head = block / groups;
    const int g = static_cast<int>(block % groups);
    const int rot = a.qkv.rotary_dim;
    const int d = g < rot / kRowsPerBlock ? 2 * g + (r & 1) + (r >> 1) * (rot / 2)
                                          : rot + (g - rot / kRowsPerBlock) * kRowsPerBlock + r;
    return head * a.qkv.head_dim + d;
  } else {
    return block * kRowsPerBlock + r;
  }
}

template <int M>
using Partials = float[M][kRowsPerBlock];  // [x row][owned W row]

// The 16-byte path over chunks [0, chunks) of each row (chunks = k / 8). W is constant, so the
// first round of its loads (all of a block's rows at K <= 4096) is issued before waiting for the
// kernel that writes x (measured neither to help nor to hurt, docs/PERFORMANCE.md).
template <typename T, int M, typename AfterWait>
__device__ __forceinline__ void accumulate_vectorised(const T* x, const T* const* rows, int64_t k,
                                                      Partials<M>& acc, AfterWait after_wait) {
  const int64_t chunks = k / kChunkElems;
  bool waited = false;
  for (int64_t base = threadIdx.x; base < chunks; base += kThreads * kChunksInFlight) {
    // Every load is issued, unconditionally, before any is used: a chunk past the end re-reads
    // the last one (valid memory, an L2 hit) and is skipped below. Unconditional volatile loads
    // cannot be sunk into the conditional blocks that use them, which would serialise them.
    uint4 wv[kChunksInFlight][kRowsPerBlock];
#pragma unroll
    for (int u = 0; u < kChunksInFlight; ++u) {
      const int64_t c = base + u * kThreads < chunks ? base + u * kThreads : chunks - 1;
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) wv[u][r] = load_streaming(rows[r] + c * kChunkElems);
    }
    if (!waited) {
      wait_for_previous_kernel();
      after_wait();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kChunksInFlight; ++u) {
      const int64_t c = base + u * kThreads;
      if (c >= chunks) continue;
      float wf[kRowsPerBlock][kChunkElems];
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) unpack8<T>(wv[u][r], wf[r]);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[kChunkElems];
        unpack8<T>(load_cached(x + m * k + c * kChunkElems), xf);
#pragma unroll
        for (int r = 0; r < kRowsPerBlock; ++r) {
#pragma unroll
          for (int i = 0; i < kChunkElems; ++i) acc[m][r] = fmaf(xf[i], wf[r][i], acc[m][r]);
        }
      }
    }
  }
  if (!waited) {  // no chunk in this thread
    wait_for_previous_kernel();
    after_wait();
  }
}

// The element-wise path over [begin, k): K not a multiple of 8, or unaligned x/W.
template <typename T, int M>
__device__ __forceinline__ void accumulate_scalar(const T* x, const T* const* rows, int64_t k,
                                                  int64_t begin, Partials<M>& acc) {
  for (int64_t i = begin + threadIdx.x; i < k; i += kThreads) {
    float wf[kRowsPerBlock];
#pragma unroll
    for (int r = 0; r < kRowsPerBlock; ++r) wf[r] = to_f32(rows[r][i]);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float xv = to_f32(x[m * k + i]);
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) acc[m][r] = fmaf(xv, wf[r], acc[m][r]);
    }
  }
}

// kRopeQkv: what one output needs besides its sum. Positions and slots come from the step's
// batch upload, which every kernel of the step follows, so they may be read before the wait,
// as constants. At one row they are, with the weights: after the wait their two dependent round
// trips (the position, then its cos/sin out of DRAM) would outlast the block's x load and sums
// and hold up its epilogue. With more rows they are read after the wait, under the sums, where
// reading them earlier would cost registers (M = 7, 8 spill).
struct RopeOperands {
  bool rotate = false;  // q and k dims below rotary_dim
  float cos = 1.0f, sin = 0.0f;
  int32_t kv_row = 0;  // slots are int32
};

template <typename T, typename OutT>
__device__ __forceinline__ RopeOperands load_rope_operands(const GemvArgs<T, OutT>& a, int m,
                                                           int64_t row) {
  const QkvLayout& lay = a.qkv;
  const int64_t head = row / lay.head_dim;
  const int d = static_cast<int>(row % lay.head_dim);
  RopeOperands o;
  if (head >= lay.num_heads) o.kv_row = a.kv.slots != nullptr ? a.kv.slots[m] : m;
  o.rotate = head < lay.num_heads + lay.num_kv_heads && d < lay.rotary_dim;
  if (o.rotate) {
    const int half = lay.rotary_dim / 2;
    const int j = lay.interleaved ? d / 2 : (d < half ? d : d - half);
    const int64_t at = static_cast<int64_t>(a.positions[m]) * half + j;
    o.cos = a.rope_cos[at];
    o.sin = a.rope_sin[at];
  }
  return o;
}

// kRopeQkv, one finished row (value `v`, its pair partner's `other`): rotated, then written to
// q or to the token's KV pool row, as qkv_norm_rope writes it.
template <typename T, typename OutT>
__device__ __forceinline__ void store_rope_qkv(const GemvArgs<T, OutT>& a, int m, int r,
                                               int64_t row, float v, float other,
                                               const RopeOperands& op) {
  const QkvLayout& lay = a.qkv;
  const int64_t head = row / lay.head_dim;
  const int64_t q_dim = lay.num_heads * lay.head_dim;
  const int64_t kv_dim = lay.num_kv_heads * lay.head_dim;
  const bool first = lay.interleaved ? (r & 1) == 0 : r < 2;
  const float out = op.rotate ? rotate_pair(v, other, op.cos, op.sin, first) : v;
  if (head < lay.num_heads) {
    a.q[m * q_dim + row] = from_f32<T>(out);
    return;
  }
  if (op.kv_row < 0) return;  // a padding token: no KV slot
  const bool is_k = head < lay.num_heads + lay.num_kv_heads;
  store_kv_element<T>(a.kv, is_k, op.kv_row, kv_dim, lay.head_dim,
                      row - q_dim - (is_k ? 0 : kv_dim), out);
}

// Blocks per SM the register budget must allow: the loads in flight per SM, hence the bandwidth
// of the short (qkv, o) projections, scale with it; 4 caps m = 1 at 64 registers (measured on
// the H200: 80-91 registers, 3 blocks, cost the 9B batch-1 step 0.2 ms).
constexpr int min_blocks_per_sm(int m) {
  return m == 1 ? 4 : 2;
}

template <typename T, typename OutT, int M, Epilogue E>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm(M)) gemv_kernel(GemvArgs<T, OutT> a) {
  static_assert(M * kRowsPerBlock <= 32, "the epilogue is warp 0's: one lane per output sum");
  if (a.start_trigger) allow_next_kernel();
  const int64_t block = blockIdx.x;
  // Rows past the end of W re-read its last row (valid memory); their sums are never stored.
  const T* rows[kRowsPerBlock];
#pragma unroll
  for (int r = 0; r < kRowsPerBlock; ++r) {
    const int64_t row = weight_row<E>(a, block, r);
    rows[r] = a.w + (row < a.n ? row : a.n - 1) * a.k;
  }
  // Lane `slot` of warp 0 finishes sum (x row m, row slot r); its bias is constant, so it is
  // loaded now rather than after the sweep.
  const int slot = threadIdx.x;
  const int m = slot / kRowsPerBlock;
  const int r = slot % kRowsPerBlock;
  const int64_t row = weight_row<E>(a, block, r);
  const bool live = slot < M * kRowsPerBlock && row < a.n;
  const float bias = live && a.bias != nullptr ? to_f32(a.bias[row]) : 0.0f;
  RopeOperands rope;
  constexpr bool kRopeBeforeWait = E == Epilogue::kRopeQkv && M == 1;
  if constexpr (kRopeBeforeWait) {
    if (live) rope = load_rope_operands(a, m, row);
  }
  const auto after_wait = [&] {
    if constexpr (E == Epilogue::kRopeQkv && !kRopeBeforeWait) {
      if (live) rope = load_rope_operands(a, m, row);
    }
  };
  Partials<M> acc;
#pragma unroll
  for (int i = 0; i < M; ++i) {
#pragma unroll
    for (int j = 0; j < kRowsPerBlock; ++j) acc[i][j] = 0.0f;
  }
  int64_t scalar_begin = 0;
  if (a.vectorised) {
    accumulate_vectorised<T, M>(a.x, rows, a.k, acc, after_wait);  // waits for the previous kernel
    scalar_begin = a.k / kChunkElems * kChunkElems;                // == k today; kept general
  } else {
    wait_for_previous_kernel();
    after_wait();
  }
  accumulate_scalar<T, M>(a.x, rows, a.k, scalar_begin, acc);
  if (a.late_trigger) allow_next_kernel();  // every load of this block has been used

  __shared__ float partial[kWarps][M * kRowsPerBlock];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int i = 0; i < M; ++i) {
#pragma unroll
    for (int j = 0; j < kRowsPerBlock; ++j) {
      const float s = warp_sum(acc[i][j]);
      if (lane == 0) partial[warp][i * kRowsPerBlock + j] = s;
    }
  }
  __syncthreads();
  if (warp != 0) return;
  float sum = bias;
  if (live) {
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][slot];
  }
  if constexpr (E == Epilogue::kStore) {
    if (live) a.y[m * a.n + row] = from_f32<OutT>(sum);
  } else {
    // Pairs meet by shuffle (lanes r ^ 1 or r ^ 2 of the same x row), each rounded as the
    // unfused kernels read it back from memory.
    const float v = to_f32(from_f32<T>(sum));
    const int partner_lane = E == Epilogue::kRopeQkv && a.qkv.interleaved ? 1 : 2;
    const float other = __shfl_xor_sync(0xffffffffu, v, partner_lane);
    if (!live) return;
    if constexpr (E == Epilogue::kSwiGLU) {
      if (r < 2) a.y[m * (a.n / 2) + row] = from_f32<OutT>(silu_times(v, other));
    } else {
      store_rope_qkv(a, m, r, row, v, other, rope);
    }
  }
}

// ---- Three to eight rows on the tensor cores ----------------------------------------------------
// With 3-8 rows of x the CUDA-core sweep above is bound by its FMAs (0.5-0.95x cuBLASLt on the
// 9B shapes). gemv_mma_kernel swaps the operands instead: 16 rows of W are an m16n8k16 MMA's A,
// the (up to 8) rows of x its B, so the tensor cores do the products while W streams from memory
// as in the sweep. A block of kMmaWarps warps owns 16 rows of W and splits K between its warps,
// each taking kMmaKStep-wide slices (four MMAs) kMmaUnroll at a time, loads all issued first.
// Within a slice, lane (g, c) reads 16 consecutive elements of rows g and g + 8 of W and of x's
// row g; the MMA's k order is permuted alike for both operands (a dot product does not care), so
// those loads are its fragments as they stand. The warps' D fragments are summed in shared memory.
constexpr int kMmaWarps = 16;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kMmaKStep = 64;
constexpr int kMmaUnroll = 1;

template <typename T, typename OutT>
__global__ void __launch_bounds__(kMmaThreads, 2) gemv_mma_kernel(GemvArgs<T, OutT> a, int m) {
  __shared__ float sums[kMmaWarps][32][4];
  const int warp = threadIdx.x / 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const auto [wa, wb, xr] = mma_lane_rows(a.w, a.x, row0, a.n, a.k, m);
  const int64_t slices = a.k / kMmaKStep;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  bool waited = false;
  for (int64_t s0 = warp; s0 < slices; s0 += kMmaWarps * kMmaUnroll) {
    uint4 w[kMmaUnroll][4];
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int64_t s = s0 + u * kMmaWarps < slices ? s0 + u * kMmaWarps : slices - 1;
      w[u][0] = load_streaming(wa + s * kMmaKStep);
      w[u][1] = load_streaming(wa + s * kMmaKStep + 8);
      w[u][2] = load_streaming(wb + s * kMmaKStep);
      w[u][3] = load_streaming(wb + s * kMmaKStep + 8);
    }
    if (!waited) {
      wait_for_previous_kernel();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int64_t s = s0 + u * kMmaWarps;
      if (s >= slices) continue;
      const uint4 x0 = load_cached(xr + s * kMmaKStep), x1 = load_cached(xr + s * kMmaKStep + 8);
      const uint32_t ga[8] = {w[u][0].x, w[u][0].y, w[u][0].z, w[u][0].w,
                              w[u][1].x, w[u][1].y, w[u][1].z, w[u][1].w};
      const uint32_t gb[8] = {w[u][2].x, w[u][2].y, w[u][2].z, w[u][2].w,
                              w[u][3].x, w[u][3].y, w[u][3].z, w[u][3].w};
      const uint32_t xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t frag[4] = {ga[2 * j], gb[2 * j], ga[2 * j + 1], gb[2 * j + 1]};
        mma16816<T>(acc, frag, xs[2 * j], xs[2 * j + 1]);
      }
    }
  }
  if (!waited) wait_for_previous_kernel();
  int64_t row = 0;
  int token = 0;
  float sum = 0.0f;
  if (!sum_mma_fragments<kMmaWarps>(acc, sums, row0, m, a.n, row, token, sum)) return;
  const float bias = a.bias != nullptr ? to_f32(a.bias[row]) : 0.0f;
  a.y[token * a.n + row] = from_f32<OutT>(sum + bias);
}

// Picks the instantiation for m among M, M + 1, ..., kGemvMaxRows (the caller checked the range).
template <typename T, typename OutT, Epilogue E, int M = 1>
void launch_rows(const GemvArgs<T, OutT>& a, int64_t m, unsigned blocks, cudaStream_t stream) {
  if (m == M) {
    launch_dependent("gemv", gemv_kernel<T, OutT, M, E>, blocks, kThreads, 0, stream, a);
    return;
  }
  if constexpr (M < kGemvMaxRows) launch_rows<T, OutT, E, M + 1>(a, m, blocks, stream);
}

// The checks every entry point shares; returns the arguments without the epilogue's fields.
template <typename T, typename OutT>
GemvArgs<T, OutT> base_args(const void* x, const void* w, const void* bias, void* y, int64_t m,
                            int64_t n, int64_t k) {
  if (m < 0 || m > kGemvMaxRows || n < 0 || k < 0) {
    fail(ErrorCode::kInvalidArgument, "CUDA gemv: m " + std::to_string(m) + ", n " +
                                          std::to_string(n) + ", k " + std::to_string(k) +
                                          " (m must be 0.." + std::to_string(kGemvMaxRows) + ")");
  }
  if ((n + kRowsPerBlock - 1) / kRowsPerBlock > std::numeric_limits<int32_t>::max()) {
    fail(ErrorCode::kUnsupported, "CUDA gemv: " + std::to_string(n) + " rows is too many");
  }
  GemvArgs<T, OutT> a{};
  a.x = static_cast<const T*>(x);
  a.w = static_cast<const T*>(w);
  a.bias = static_cast<const OutT*>(bias);
  a.y = static_cast<OutT*>(y);
  a.n = n;
  a.k = k;
  a.vectorised = k % kChunkElems == 0 && aligned_to(x, 16) && aligned_to(w, 16);
  a.late_trigger = late_trigger_at(m);
  return a;
}

// Moves the launch's trigger from after the sweep to the block's start (pdl.cuh) when `at_start`.
template <typename T, typename OutT>
void trigger_at_start(GemvArgs<T, OutT>& a, bool at_start) {
  a.start_trigger = at_start;
  a.late_trigger = a.late_trigger && !at_start;
}

template <typename T, typename OutT, Epilogue E>
void launch(const GemvArgs<T, OutT>& a, int64_t m, int64_t blocks, cudaStream_t stream) {
  if (m == 0 || blocks == 0) return;
  launch_rows<T, OutT, E>(a, m, static_cast<unsigned>(blocks), stream);
  check_launch("gemv");
}

int64_t blocks_for(int64_t rows) {
  return (rows + kRowsPerBlock - 1) / kRowsPerBlock;
}

}  // namespace

bool gemv_mma_supported(int64_t m, int64_t k, const void* x, const void* w) {
  return m >= kGemvMmaMinRows && m <= kGemvMaxRows && k % kMmaKStep == 0 && aligned_to(x, 16) &&
         aligned_to(w, 16);
}

void gemv(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n, int64_t k,
          ActType type, bool out_f32, cudaStream_t stream) {
  const auto run = [&]<typename T, typename OutT>() {
    const GemvArgs<T, OutT> a = base_args<T, OutT>(x, w, bias, y, m, n, k);
    if (n > 0 && gemv_mma_supported(m, k, x, w)) {
      launch_dependent("gemv_mma", gemv_mma_kernel<T, OutT>, static_cast<unsigned>((n + 15) / 16),
                       kMmaThreads, 0, stream, a, static_cast<int>(m));
      check_launch("gemv_mma");
      return;
    }
    launch<T, OutT, Epilogue::kStore>(a, m, blocks_for(n), stream);
  };
  if (type == ActType::kBF16) {
    out_f32 ? run.operator()<__nv_bfloat16, float>()
            : run.operator()<__nv_bfloat16, __nv_bfloat16>();
  } else {
    out_f32 ? run.operator()<__half, float>() : run.operator()<__half, __half>();
  }
}

void gemv_swiglu(const void* x, const void* w_gate_up, const void* bias, void* y, int64_t m,
                 int64_t inter, int64_t k, ActType type, cudaStream_t stream) {
  const auto run = [&]<typename T>() {
    GemvArgs<T, T> a = base_args<T, T>(x, w_gate_up, bias, y, m, 2 * inter, k);
    trigger_at_start(a, swiglu_trigger_at_start(m));
    launch<T, T, Epilogue::kSwiGLU>(a, m, (inter + 1) / 2, stream);
  };
  type == ActType::kBF16 ? run.operator()<__nv_bfloat16>() : run.operator()<__half>();
}

bool gemv_rope_qkv_supported(const QkvLayout& layout) {
  const int hd = layout.head_dim;
  return hd > 0 && hd % kRowsPerBlock == 0 && layout.rotary_dim % kRowsPerBlock == 0 &&
         layout.rotary_dim >= 0 && layout.rotary_dim <= hd;
}

void gemv_rope_qkv(const void* x, const void* w_qkv, const void* bias, int64_t m, int64_t k,
                   const QkvLayout& layout, const int32_t* positions, const float* rope_cos,
                   const float* rope_sin, void* q, KvDestination kv, ActType type,
                   cudaStream_t stream) {
  if (!gemv_rope_qkv_supported(layout)) {
    fail(ErrorCode::kInvalidArgument,
         "CUDA gemv_rope_qkv: head_dim " + std::to_string(layout.head_dim) + ", rotary_dim " +
             std::to_string(layout.rotary_dim) + " (both must be multiples of 4)");
  }
  const int64_t n =
      static_cast<int64_t>(layout.num_heads + 2 * layout.num_kv_heads) * layout.head_dim;
  const auto run = [&]<typename T>() {
    GemvArgs<T, T> a = base_args<T, T>(x, w_qkv, bias, nullptr, m, n, k);
    a.qkv = layout;
    a.positions = positions;
    a.rope_cos = rope_cos;
    a.rope_sin = rope_sin;
    a.q = static_cast<T*>(q);
    a.kv = kv;
    trigger_at_start(a, qkv_trigger_at_start(m));
    launch<T, T, Epilogue::kRopeQkv>(a, m, blocks_for(n), stream);
  };
  type == ActType::kBF16 ? run.operator()<__nv_bfloat16>() : run.operator()<__half>();
}

}  // namespace autoglm::cuda
