// Times the decode GEMV (backend/cuda/gemv.h) next to cuBLASLt through Gemm::linear (gemm.h) on
// GLM-4-9B's five weight shapes (qkv with its bias, o, gate_up, down, lm_head with fp32 logits),
// BF16, at m = 1, 2, 4 and 8. Each sample is 10 back-to-back launches, captured in a CUDA graph
// and replayed between CUDA events (as a captured decode step runs them); the median of 21 samples
// after 3 warm-ups is reported, with the achieved rate = weight bytes / time. Launches rotate over
// copies of W that together exceed L2 (50 MB on an H200), so W comes from HBM as it does in a
// 40-layer decode step. The device-to-device copy rate (read + write) of the same run is printed as
// the ceiling, and each shape's two outputs are compared (relative L2 difference), so a broken
// kernel cannot post a fast time unnoticed. Then the FP8 weights of an FP8-weight model (the four
// layer projections, quantized per row from the same BF16 pool): the FP8 GEMV (m = 1, 2; x in BF16)
// and the FP8 tensor-core GEMV (m = 4, 8; x quantized per row) next to cuBLASLt's FP8 matmul over
// the same quantized x, the rate counting W's E4M3 bytes. Owned by the gemv thread (issue 7).
// Thread ownership: main thread only.
//   cuda_gemv_bench
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"

namespace {

using autoglm::cuda::ActType;
using autoglm::cuda::DeviceBuffer;

constexpr int kWarmups = 3;
constexpr int kSamples = 21;
constexpr int kLaunchesPerSample = 10;
constexpr size_t kPoolBytes = size_t{1300} << 20;  // holds lm_head (1,242 MB) once
constexpr int kMaxCopies = 16;

struct WeightShape {
  const char* name;
  int64_t n, k;
  bool bias;
  bool out_f32;
};

constexpr WeightShape kShapes[] = {
    {"qkv", 4608, 4096, true, false},       {"o", 4096, 4096, false, false},
    {"gate_up", 27392, 4096, false, false}, {"down", 4096, 13696, false, false},
    {"lm_head", 151552, 4096, false, true},
};

uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_value(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Fills `bytes` of device memory with random BF16 values in [-1, 1) (a repeated 16 MB pattern).
void fill_random(void* dst, size_t bytes, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> pattern(8u << 20);
  for (uint16_t& b : pattern) b = bf16_bits(dist(rng));
  const size_t pattern_bytes = pattern.size() * 2;
  for (size_t off = 0; off < bytes; off += pattern_bytes) {
    AUTOGLM_CUDA_CHECK(cudaMemcpy(static_cast<char*>(dst) + off, pattern.data(),
                                  std::min(pattern_bytes, bytes - off), cudaMemcpyHostToDevice));
  }
}

// Median over kSamples (after kWarmups) of the time sample() takes on `stream`, in microseconds.
template <typename Sample>
double median_sample_us(cudaStream_t stream, const Sample& sample) {
  cudaEvent_t start, stop;
  AUTOGLM_CUDA_CHECK(cudaEventCreate(&start));
  AUTOGLM_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int s = 0; s < kWarmups + kSamples; ++s) {
    AUTOGLM_CUDA_CHECK(cudaEventRecord(start, stream));
    sample();
    AUTOGLM_CUDA_CHECK(cudaEventRecord(stop, stream));
    AUTOGLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    AUTOGLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (s >= kWarmups) times.push_back(ms * 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Median time of one launch, in microseconds. launch(i, stream) is the i-th launch of a sample;
// a sample is kLaunchesPerSample launches captured into one CUDA graph on a stream of its own and
// replayed, as a decode step's launches are (launched one by one from the host instead, the first
// kernels of a sample wait on the host and programmatic launch has no queued kernel to overlap).
template <typename Launch>
double median_us(const Launch& launch) {
  cudaStream_t stream;
  AUTOGLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph;
  AUTOGLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int j = 0; j < kLaunchesPerSample; ++j) launch(j, stream);
  AUTOGLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  AUTOGLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const double us =
      median_sample_us(stream, [&] { AUTOGLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return us / kLaunchesPerSample;
}

// The output as fp32 host values (BF16 or fp32 on the device).
std::vector<float> read_output(const void* y, size_t count, bool f32) {
  std::vector<float> out(count);
  if (f32) {
    AUTOGLM_CUDA_CHECK(cudaMemcpy(out.data(), y, count * 4, cudaMemcpyDeviceToHost));
    return out;
  }
  std::vector<uint16_t> bits(count);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(bits.data(), y, count * 2, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < count; ++i) out[i] = bf16_value(bits[i]);
  return out;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(ref[i]))
      return std::numeric_limits<double>::infinity();
    num += (double{a[i]} - ref[i]) * (double{a[i]} - ref[i]);
    den += double{ref[i]} * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// D2D copy rate, read + write, over half the pool (before it holds weights). Timed from a plain
// stream launch: a copy node inside a graph ran at two thirds of this rate on the H200.
void print_copy_ceiling(void* pool) {
  const size_t half = kPoolBytes / 2;
  char* base = static_cast<char*>(pool);
  const double us = median_sample_us(nullptr, [&] {
    AUTOGLM_CUDA_CHECK(cudaMemcpyAsync(base + half, base, half, cudaMemcpyDeviceToDevice));
  });
  std::printf("[gemv] ceiling: D2D copy of %zu MiB: %.0f GB/s (read + write)\n", half >> 20,
              2.0 * half / (us * 1e3));
}

struct Buffers {
  void* pool;
  const void* x;
  const void* bias;
  void* y_ours;
  void* y_cublas;
};

void bench_shape(const WeightShape& s, int64_t m, const Buffers& b, autoglm::cuda::Gemm& gemm) {
  const size_t w_bytes = static_cast<size_t>(s.n) * s.k * 2;
  const int copies = static_cast<int>(std::min<size_t>(kMaxCopies, kPoolBytes / w_bytes));
  const auto weights = [&](int i) {
    return static_cast<const char*>(b.pool) + (i % copies) * w_bytes;
  };
  const void* bias = s.bias ? b.bias : nullptr;
  const auto ours = [&](int i, cudaStream_t stream) {
    autoglm::cuda::gemv(b.x, weights(i), bias, b.y_ours, m, s.n, s.k, ActType::kBF16, s.out_f32,
                        stream);
  };
  const auto lt = [&](int i, cudaStream_t stream) {
    gemm.linear(b.x, weights(i), bias, b.y_cublas, m, s.n, s.k, ActType::kBF16, s.out_f32, stream);
  };
  const double ours_us = median_us(ours);
  const double lt_us = median_us(lt);
  // Both outputs of copy 0, compared.
  ours(0, nullptr);
  lt(0, nullptr);
  const size_t count = static_cast<size_t>(m * s.n);
  const double diff =
      rel_diff(read_output(b.y_ours, count, s.out_f32), read_output(b.y_cublas, count, s.out_f32));
  std::printf(
      "[gemv] %-8s %6lld x %5lld m %lld: ours %8.1f us %5.0f GB/s | cuBLASLt %8.1f us %5.0f GB/s "
      "| speedup %.2f | rel diff %.1e | %d copies of W\n",
      s.name, static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(m),
      ours_us, w_bytes / (ours_us * 1e3), lt_us, w_bytes / (lt_us * 1e3), lt_us / ours_us, diff,
      copies);
}

struct Fp8Buffers {
  const char* w8;  // copies of W quantized from the BF16 pool, each followed by the next
  const float* w_scales;
  const void* x;  // BF16
  void* x8;
  float* x_scales;
  const void* bias;
  void* y_ours;
  void* y_cublas;
  size_t pool_bytes;
};

void bench_shape_fp8(const WeightShape& s, int64_t m, const Fp8Buffers& b,
                     autoglm::cuda::Gemm& gemm) {
  const size_t w_bytes = static_cast<size_t>(s.n) * s.k;
  const int copies = static_cast<int>(std::min<size_t>(kMaxCopies, b.pool_bytes / w_bytes));
  const auto weights = [&](int i) { return b.w8 + (i % copies) * w_bytes; };
  const auto scales = [&](int i) { return b.w_scales + (i % copies) * s.n; };
  const void* bias = s.bias ? b.bias : nullptr;
  autoglm::cuda::quantize_rows_e4m3(b.x, autoglm::DType::kBF16, m, s.k, b.x8, b.x_scales, nullptr);
  const bool unquantized_x = m <= autoglm::cuda::kGemvFp8MaxRows;
  const auto ours = [&](int i, cudaStream_t stream) {
    if (unquantized_x) {
      autoglm::cuda::gemv_fp8(b.x, weights(i), scales(i), bias, b.y_ours, m, s.n, s.k,
                              ActType::kBF16, stream);
    } else {
      autoglm::cuda::gemv_fp8_mma(b.x8, b.x_scales, weights(i), scales(i), bias, b.y_ours, m, s.n,
                                  s.k, ActType::kBF16, stream);
    }
  };
  const auto lt = [&](int i, cudaStream_t stream) {
    gemm.linear_fp8(b.x8, b.x_scales, weights(i), scales(i), bias, b.y_cublas, m, s.n, s.k,
                    ActType::kBF16, stream);
  };
  const double ours_us = median_us(ours);
  const double lt_us = median_us(lt);
  ours(0, nullptr);
  lt(0, nullptr);
  const size_t count = static_cast<size_t>(m * s.n);
  const double diff =
      rel_diff(read_output(b.y_ours, count, false), read_output(b.y_cublas, count, false));
  std::printf(
      "[gemv-fp8] %-8s %6lld x %5lld m %lld: ours (%s) %7.1f us %5.0f GB/s | cuBLASLt %7.1f us "
      "%5.0f GB/s | speedup %.2f | rel diff %.1e | %d copies of W\n",
      s.name, static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(m),
      unquantized_x ? "W8A16" : "W8A8 mma", ours_us, w_bytes / (ours_us * 1e3), lt_us,
      w_bytes / (lt_us * 1e3), lt_us / ours_us, diff, copies);
}

// Quantizes the front of the BF16 pool, as rows of k, into the FP8 pool, and times the layer
// projections (not the lm_head, which an FP8-weight model keeps in BF16).
void bench_fp8(const Buffers& b, autoglm::cuda::Gemm& gemm) {
  const size_t pool_bytes = kPoolBytes / 2;
  DeviceBuffer w8(pool_bytes, "FP8 weights");
  constexpr int64_t kMinK = 4096;
  DeviceBuffer w_scales(pool_bytes / kMinK * sizeof(float), "FP8 weight scales");
  DeviceBuffer x8(autoglm::cuda::kGemvMaxRows * 13696, "FP8 x");
  DeviceBuffer x_scales(autoglm::cuda::kGemvMaxRows * sizeof(float), "FP8 x scales");
  for (const int64_t m : {1, 2, 4, 8}) {
    for (const WeightShape& s : kShapes) {
      if (std::strcmp(s.name, "lm_head") == 0) continue;
      const int64_t rows = static_cast<int64_t>(pool_bytes / s.k);
      autoglm::cuda::quantize_rows_e4m3(b.pool, autoglm::DType::kBF16, rows, s.k, w8.get(),
                                        static_cast<float*>(w_scales.get()), nullptr);
      const Fp8Buffers f{static_cast<const char*>(w8.get()),
                         static_cast<const float*>(w_scales.get()),
                         b.x,
                         x8.get(),
                         static_cast<float*>(x_scales.get()),
                         b.bias,
                         b.y_ours,
                         b.y_cublas,
                         pool_bytes};
      bench_shape_fp8(s, m, f, gemm);
    }
  }
}

int run() {
  std::mt19937 rng(7);
  DeviceBuffer pool(kPoolBytes, "weights");
  print_copy_ceiling(pool.get());
  fill_random(pool.get(), kPoolBytes, rng);
  constexpr int64_t kMaxK = 13696, kMaxN = 151552;
  DeviceBuffer x(autoglm::cuda::kGemvMaxRows * kMaxK * 2, "x");
  fill_random(x.get(), x.bytes(), rng);
  DeviceBuffer bias(kMaxN * 2, "bias");
  fill_random(bias.get(), bias.bytes(), rng);
  DeviceBuffer y_ours(autoglm::cuda::kGemvMaxRows * kMaxN * 4, "y (ours)");
  DeviceBuffer y_cublas(autoglm::cuda::kGemvMaxRows * kMaxN * 4, "y (cuBLASLt)");
  DeviceBuffer workspace(autoglm::cuda::Gemm::kWorkspaceBytes, "cuBLASLt workspace");
  autoglm::cuda::Gemm gemm(workspace.get(), workspace.bytes());
  const Buffers b{pool.get(), x.get(), bias.get(), y_ours.get(), y_cublas.get()};
  for (const int64_t m : {1, 2, 4, 8}) {
    for (const WeightShape& s : kShapes) bench_shape(s, m, b, gemm);
  }
  bench_fp8(b, gemm);
  AUTOGLM_CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}

}  // namespace

int main() {
  std::string why;
  if (!autoglm::cuda_available(&why)) {
    std::fprintf(stderr, "cuda_gemv_bench: no usable GPU: %s\n", why.c_str());
    return 1;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gemv_bench: %s\n", e.what());
    return 1;
  }
}
