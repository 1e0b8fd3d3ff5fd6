// Micro-benchmark of the CPU GEMV kernel (one thread): GB/s streamed for a weight matrix that
// fits in cache versus one that does not, per ISA and dtype. Tells whether decode is bound by
// memory bandwidth or by the kernel. Not a test; numbers go in docs/PERFORMANCE.md.
// Usage: cpu_kernels_bench [rows] [cols] [MiB of weights to cycle through]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cpu/simd_kernels.h"

using namespace autoglm;
using namespace autoglm::cpu;

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 2048;
  const int64_t cols = argc > 2 ? std::atoll(argv[2]) : 768;
  const int64_t big_mib = argc > 3 ? std::atoll(argv[3]) : 512;
  std::mt19937 rng(1);
  std::vector<float> x(cols), y(rows);
  for (float& v : x) v = static_cast<float>(rng() % 1000) / 1000.0f;
  for (const SimdKernels* k : available_kernels()) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      const int64_t matrix_bytes = rows * cols * static_cast<int64_t>(dtype_size(dt));
      for (int64_t total : {matrix_bytes, big_mib << 20}) {
        const int64_t copies = std::max<int64_t>(1, total / matrix_bytes);
        std::vector<uint16_t> mem(static_cast<size_t>(copies * matrix_bytes / 2));
        for (size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint16_t>(0x3c00 + (i & 0xff));
        const int reps =
            static_cast<int>(std::max<int64_t>(3, (2048ll << 20) / (copies * matrix_bytes)));
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) {
          for (int64_t c = 0; c < copies; ++c) {
            const WeightMatrix w{dt, reinterpret_cast<const char*>(mem.data()) + c * matrix_bytes,
                                 rows, cols};
            k->linear_rows(x.data(), 1, w, nullptr, 0, rows, y.data(), nullptr);
          }
        }
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-8s %-4s %s: %.1f GB/s\n", std::string(k->isa).c_str(),
                    std::string(dtype_name(dt)).c_str(), copies == 1 ? "in-cache " : "in-memory",
                    reps * copies * matrix_bytes / s / 1e9);
      }
    }
  }
  // Prefill: GFLOP/s of the blocked multi-token path (weights converted per 16-row tile).
  const int64_t tokens = 128;
  std::vector<float> xt(tokens * cols), yt(tokens * rows), scratch(kGemmRowBlock * cols);
  for (float& v : xt) v = static_cast<float>(rng() % 1000) / 1000.0f;
  std::vector<uint16_t> wmem(static_cast<size_t>(rows * cols * 2));
  for (size_t i = 0; i < wmem.size(); ++i) wmem[i] = static_cast<uint16_t>(0x3c00 + (i & 0xff));
  for (const SimdKernels* k : available_kernels()) {
    for (DType dt : {DType::kF32, DType::kBF16}) {
      const WeightMatrix w{dt, wmem.data(), rows, cols};
      const int reps = 5;
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) {
        k->linear_rows(xt.data(), tokens, w, nullptr, 0, rows, yt.data(), scratch.data());
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%-8s %-4s gemm %lld tokens: %.1f GFLOP/s\n", std::string(k->isa).c_str(),
                  std::string(dtype_name(dt)).c_str(), static_cast<long long>(tokens),
                  2.0 * reps * tokens * rows * cols / s / 1e9);
    }
  }
  return 0;
}
