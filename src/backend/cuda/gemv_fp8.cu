// See gemv.h (gemv_fp8, gemv_fp8_swiglu). The one- and two-row projections of an FP8-weight
// model: W is E4M3 with a scale per row, x stays in the activation type (W8A16: at these sizes
// the projection is bound by W's bytes, so quantizing x would only add a launch). Work split as
// gemv.cu's: a block of 256 threads owns kRows rows of W (consecutive; for the SwiGLU epilogue
// four of the gate half and the same four of the up half) and sweeps K in 16-byte chunks (16
// weights), thread t taking chunks t, t + 256, ...; all of a thread's kRows loads of a sweep are
// issued before the first is used, and the first sweep's before the wait for the previous kernel (W
// is constant). kRows = 8 keeps a block's bytes in flight those of the BF16 GEMV's four rows of two
// chunks. Each weight pair goes E4M3 -> FP16 in one conversion, then to fp32; products and sums
// are fp32, and the row's scale multiplies the finished sum. (Placing the E4M3 bits in an fp32 by
// integer shifts instead of the conversion measured 10-25% slower; our reading: issue-bound.)
// Three to eight rows (gemv_fp8_mma) run on the tensor cores instead, W8A8 like cuBLASLt's path:
// 16 rows of W are an m16n8k32 E4M3 MMA's A operand and the quantized rows of x its B, as
// gemv.cu's gemv_mma_kernel does in BF16: a block's 16 warps split K in 128-byte slices; lane
// (g, c) reads bytes [16c, 16c + 16) and [64 + 16c, 80 + 16c) of the slice from rows g and g + 8
// of W and from x's row g, and the MMAs' k order is permuted alike for both operands, so those
// loads are the fragments as they stand. Both scales multiply the finished sum.
// Thread ownership: see gemv.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/elementwise_math.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/gemv_loads.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 8;    // rows of W a block owns
constexpr int kChunk = 16;  // E4M3 weights per 16-byte load

template <typename T>
struct Fp8GemvArgs {
  const T* x;
  const uint8_t* w;
  const float* w_scale;
  const T* bias;  // nullptr: no bias
  T* y;
  int64_t n;
  int64_t k;  // a multiple of kChunk
  bool late_trigger;
  bool start_trigger;  // ... at the block's start instead (pdl.cuh: swiglu_trigger_at_start)
};

// Two E4M3 bytes (the lower address in the low byte) to fp32, in address order.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t pair) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair & 0xffffu), __NV_E4M3);
  return __half22float2(__half2(h));
}

// Blocks an SM: at one row the kernel fits the 64 registers that give four, so that an SM has the
// BF16 GEMV's bytes in flight (9B step on the H200: 3.20 -> 3.11 ms against two blocks). Two rows
// take 127 registers, two blocks; three spill 52 bytes and measured the same.
constexpr int fp8_blocks_per_sm(int m) {
  return m == 1 ? 4 : 2;
}

// kSwiGLU: a block owns outputs j .. j + 3 of both halves of gate_up (rows j.. of the gate half
// in slots 0-3, the same rows of the up half in slots 4-7), writes silu(gate) x up, each rounded
// as silu_mul reads the stored projection: bit for bit the unfused pair.
template <typename T, int M, bool kSwiGLU>
__global__ void __launch_bounds__(kThreads, fp8_blocks_per_sm(M))
    gemv_fp8_kernel(Fp8GemvArgs<T> a) {
  static_assert(M * kRows <= 32, "the epilogue is warp 0's: one lane per output sum");
  if (a.start_trigger) allow_next_kernel();
  // The block's rows: kRuns runs of kRun consecutive rows, run g from row first + g * run_rows.
  constexpr int kRuns = kSwiGLU ? 2 : 1;
  constexpr int kRun = kRows / kRuns;
  const int64_t run_rows = kSwiGLU ? a.n / 2 : a.n;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRun;
  // Rows past the end of a run re-read its last row (valid memory); their sums are never stored.
  const int last = static_cast<int>(min(int64_t{kRun - 1}, run_rows - 1 - first));
  const int slot = threadIdx.x;  // warp 0's lane `slot` finishes (x row m, block row r)
  const int m = slot / kRows;
  const int r = slot % kRows;
  const int64_t out = first + r % kRun;  // the output's row within its run
  const int64_t row = out + r / kRun * run_rows;
  const bool live = slot < M * kRows && out < run_rows;
  const float scale = live ? a.w_scale[row] : 0.0f;
  const float bias = live && a.bias != nullptr ? to_f32(a.bias[row]) : 0.0f;
  float acc[M][kRows] = {};
  const int64_t chunks = a.k / kChunk;
  bool waited = false;
  for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
    uint4 wv[kRows];
    // One pointer stepped down each run: the row addresses are not all kept live across the loop.
#pragma unroll
    for (int g = 0; g < kRuns; ++g) {
      const uint8_t* p = a.w + (first + g * run_rows) * a.k + c * kChunk;
#pragma unroll
      for (int j = 0; j < kRun; ++j) {
        wv[g * kRun + j] = load_streaming(p);
        if (j < last) p += a.k;
      }
    }
    if (!waited) {
      wait_for_previous_kernel();
      waited = true;
    }
    // x stays packed (8 registers a row); its pairs are unpacked where they are used, so that
    // only W's loads, the packed x and the sums are live across the row loop.
    uint4 xv[M][2];
#pragma unroll
    for (int i = 0; i < M; ++i) {
      const T* xp = a.x + i * a.k + c * kChunk;
      xv[i][0] = load_cached(xp);
      xv[i][1] = load_cached(xp + kChunkElems);
    }
#pragma unroll
    for (int wr = 0; wr < kRows; ++wr) {
      const uint32_t words[4] = {wv[wr].x, wv[wr].y, wv[wr].z, wv[wr].w};
#pragma unroll
      for (int q = 0; q < 4; ++q) {  // weights 4q .. 4q + 3 of the chunk
        const float2 lo = e4m3x2_to_float2(words[q]), hi = e4m3x2_to_float2(words[q] >> 16);
#pragma unroll
        for (int i = 0; i < M; ++i) {
          const uint4& xq = xv[i][q / 2];
          const float2 x01 = unpack2<T>(q % 2 == 0 ? xq.x : xq.z);
          const float2 x23 = unpack2<T>(q % 2 == 0 ? xq.y : xq.w);
          acc[i][wr] = fmaf(x01.x, lo.x, acc[i][wr]);
          acc[i][wr] = fmaf(x01.y, lo.y, acc[i][wr]);
          acc[i][wr] = fmaf(x23.x, hi.x, acc[i][wr]);
          acc[i][wr] = fmaf(x23.y, hi.y, acc[i][wr]);
        }
      }
    }
  }
  if (!waited) wait_for_previous_kernel();  // no chunk in this thread
  if (a.late_trigger) allow_next_kernel();  // every load of this block has been used

  __shared__ float partial[kWarps][M * kRows];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int i = 0; i < M; ++i) {
#pragma unroll
    for (int wr = 0; wr < kRows; ++wr) {
      const float s = warp_sum(acc[i][wr]);
      if (lane == 0) partial[warp][i * kRows + wr] = s;
    }
  }
  __syncthreads();
  if (warp != 0) return;
  float sum = 0.0f;
  if (live) {
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][slot];
  }
  const T y = from_f32<T>(sum * scale + bias);
  if constexpr (kSwiGLU) {
    const float up = __shfl_xor_sync(0xffffffffu, to_f32(y), kRun);  // slot r + 4 of the same m
    if (live && r < kRun) a.y[m * run_rows + out] = from_f32<T>(silu_times(to_f32(y), up));
  } else {
    if (live) a.y[m * a.n + row] = y;
  }
}

constexpr int kMmaWarps = 16;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kMmaKStep = 128;  // bytes of K a warp takes at a time: four m16n8k32 MMAs

struct Fp8MmaArgs {
  const uint8_t* x8;
  const float* x_scale;
  const uint8_t* w8;
  const float* w_scale;
  const void* bias;  // in y's type; nullptr: none
  void* y;
  int64_t n;
  int64_t k;  // a multiple of kMmaKStep
  int m;
};

template <typename T>
__global__ void __launch_bounds__(kMmaThreads, 2) gemv_fp8_mma_kernel(Fp8MmaArgs a) {
  __shared__ float sums[kMmaWarps][32][4];
  const int warp = threadIdx.x / 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const auto [wa, wb, xr] = mma_lane_rows(a.w8, a.x8, row0, a.n, a.k, a.m);
  const int64_t slices = a.k / kMmaKStep;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  bool waited = false;
  for (int64_t s = warp; s < slices; s += kMmaWarps) {
    const int64_t at = s * kMmaKStep;
    const uint4 w[4] = {load_streaming(wa + at), load_streaming(wa + at + 64),
                        load_streaming(wb + at), load_streaming(wb + at + 64)};
    if (!waited) {
      wait_for_previous_kernel();
      waited = true;
    }
    const uint4 x[2] = {load_cached(xr + at), load_cached(xr + at + 64)};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint4 &top = w[h], &bottom = w[2 + h];
      const uint32_t first[4] = {top.x, bottom.x, top.y, bottom.y};
      const uint32_t second[4] = {top.z, bottom.z, top.w, bottom.w};
      mma16832_e4m3(acc, first, x[h].x, x[h].y);
      mma16832_e4m3(acc, second, x[h].z, x[h].w);
    }
  }
  if (!waited) wait_for_previous_kernel();
  int64_t row = 0;
  int token = 0;
  float sum = 0.0f;
  if (!sum_mma_fragments<kMmaWarps>(acc, sums, row0, a.m, a.n, row, token, sum)) return;
  const float bias = a.bias != nullptr ? to_f32(static_cast<const T*>(a.bias)[row]) : 0.0f;
  static_cast<T*>(a.y)[token * a.n + row] =
      from_f32<T>(sum * a.w_scale[row] * a.x_scale[token] + bias);
}

}  // namespace

bool gemv_fp8_mma_supported(int64_t m, int64_t k, const void* x8, const void* w8) {
  return m > kGemvFp8MaxRows && m <= kGemvMaxRows && k % kMmaKStep == 0 && aligned_to(x8, 16) &&
         aligned_to(w8, 16);
}

void gemv_fp8_mma(const void* x8, const float* x_scale, const void* w8, const float* w_scale,
                  const void* bias, void* y, int64_t m, int64_t n, int64_t k, ActType type,
                  cudaStream_t stream) {
  if (!gemv_fp8_mma_supported(m, k, x8, w8) || n < 0) {
    fail(ErrorCode::kInvalidArgument,
         "CUDA gemv_fp8_mma: m " + std::to_string(m) + " (" + std::to_string(kGemvFp8MaxRows + 1) +
             ".." + std::to_string(kGemvMaxRows) + "), n " + std::to_string(n) + ", k " +
             std::to_string(k) + " (a multiple of 128) with 16-byte aligned x8 and w8");
  }
  if (n == 0) return;
  const Fp8MmaArgs a{static_cast<const uint8_t*>(x8),
                     x_scale,
                     static_cast<const uint8_t*>(w8),
                     w_scale,
                     bias,
                     y,
                     n,
                     k,
                     static_cast<int>(m)};
  const auto kernel =
      type == ActType::kBF16 ? gemv_fp8_mma_kernel<__nv_bfloat16> : gemv_fp8_mma_kernel<__half>;
  launch_dependent("gemv_fp8_mma", kernel, static_cast<unsigned>((n + 15) / 16), kMmaThreads, 0,
                   stream, a);
  check_launch("gemv_fp8_mma");
}

bool gemv_fp8_supported(int64_t m, int64_t k, const void* x, const void* w8) {
  return m >= 1 && m <= kGemvFp8MaxRows && k % kChunk == 0 && aligned_to(x, 16) &&
         aligned_to(w8, 16);
}

namespace {

// gemv_fp8 and gemv_fp8_swiglu: n rows of W, `outputs` rows of y per token (n or n / 2).
template <bool kSwiGLU>
void launch_fp8(const char* name, const void* x, const void* w8, const float* w_scale,
                const void* bias, void* y, int64_t m, int64_t n, int64_t k, ActType type,
                cudaStream_t stream) {
  if (!gemv_fp8_supported(m, k, x, w8) || n < 0 || (kSwiGLU && n % 2 != 0)) {
    fail(ErrorCode::kInvalidArgument, std::string("CUDA ") + name + ": m " + std::to_string(m) +
                                          " (1.." + std::to_string(kGemvFp8MaxRows) + "), n " +
                                          std::to_string(n) + (kSwiGLU ? " (even)" : "") + ", k " +
                                          std::to_string(k) +
                                          " (a multiple of 16) with 16-byte aligned x and w");
  }
  if (n == 0) return;
  constexpr int kRowsPerRun = kSwiGLU ? kRows / 2 : kRows;
  const int64_t run_rows = kSwiGLU ? n / 2 : n;
  const int64_t blocks = (run_rows + kRowsPerRun - 1) / kRowsPerRun;
  if (blocks > (int64_t{1} << 31) - 1) {
    fail(ErrorCode::kUnsupported,
         std::string("CUDA ") + name + ": " + std::to_string(n) + " rows is too many");
  }
  // The SwiGLU GEMV's successor is the down GEMV, which reads only weights before its wait.
  const bool start_trigger = kSwiGLU && swiglu_trigger_at_start(m);
  const auto launch = [&](auto element) {
    using T = decltype(element);
    const Fp8GemvArgs<T> a{static_cast<const T*>(x),
                           static_cast<const uint8_t*>(w8),
                           w_scale,
                           static_cast<const T*>(bias),
                           static_cast<T*>(y),
                           n,
                           k,
                           late_trigger_at(m) && !start_trigger,
                           start_trigger};
    launch_dependent(name, m == 1 ? gemv_fp8_kernel<T, 1, kSwiGLU> : gemv_fp8_kernel<T, 2, kSwiGLU>,
                     static_cast<unsigned>(blocks), kThreads, 0, stream, a);
  };
  type == ActType::kBF16 ? launch(__nv_bfloat16{}) : launch(__half{});
  check_launch(name);
}

}  // namespace

void gemv_fp8(const void* x, const void* w8, const float* w_scale, const void* bias, void* y,
              int64_t m, int64_t n, int64_t k, ActType type, cudaStream_t stream) {
  launch_fp8<false>("gemv_fp8", x, w8, w_scale, bias, y, m, n, k, type, stream);
}

void gemv_fp8_swiglu(const void* x, const void* w8, const float* w_scale, const void* bias, void* y,
                     int64_t m, int64_t n, int64_t k, ActType type, cudaStream_t stream) {
  launch_fp8<true>("gemv_fp8_swiglu", x, w8, w_scale, bias, y, m, n, k, type, stream);
}

}  // namespace autoglm::cuda
