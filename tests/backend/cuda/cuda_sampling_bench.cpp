// Times the GPU sampler (backend/cuda/sampling.h) on GLM-4's vocabulary (151,552) for a few
// batch sizes and modes, with CUDA events (median of 20 launches after 3 warm-ups), next to
// the time to copy the same logits rows to the host (what sampling on the host would need
// first). Prints one line per case. Run by scripts/gpu_check.sh.
// Thread ownership: main thread only.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/sampling.h"

namespace {

using autoglm::LogitAdjustment;
using autoglm::RowSample;
using autoglm::RowSamplingParams;

template <typename Launch>
float median_ms(const Launch& launch) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> times;
  for (int i = 0; i < 23; ++i) {
    cudaEventRecord(start);
    launch();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (i >= 3) times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main() {
  constexpr int32_t kVocab = 151'552;
  constexpr int32_t kMaxRows = 256;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> host(static_cast<size_t>(kMaxRows) * kVocab);
  for (float& v : host) v = normal(rng);
  autoglm::cuda::DeviceBuffer logits(host.size() * sizeof(float), "logits");
  autoglm::cuda::DeviceBuffer params(kMaxRows * sizeof(RowSamplingParams), "params");
  autoglm::cuda::DeviceBuffer adjust(sizeof(LogitAdjustment), "adjustments");
  autoglm::cuda::DeviceBuffer out(kMaxRows * sizeof(RowSample), "out");
  autoglm::cuda::DeviceBuffer scan(autoglm::cuda::sample_scan_bytes(kMaxRows, kVocab), "scan");
  autoglm::cuda::PinnedBuffer pinned(host.size() * sizeof(float), "host logits");
  struct Mode {
    const char* name;
    RowSamplingParams p;
  };
  std::vector<Mode> modes(4);
  modes[0].name = "greedy";
  modes[3].name = "T0.8";
  modes[3].p.temperature = 0.8f;
  modes[1].name = "T0.8,top_p0.9";
  modes[1].p.temperature = 0.8f, modes[1].p.top_p = 0.9f;
  modes[2].name = "T1,top_k50,top_p0.95,logprobs5";
  modes[2].p.temperature = 1.0f, modes[2].p.top_k = 50, modes[2].p.top_p = 0.95f;
  modes[2].p.top_logprobs = 5;
  for (const int32_t rows : {1, 8, 64, 256}) {
    const size_t bytes = static_cast<size_t>(rows) * kVocab * sizeof(float);
    cudaMemcpy(logits.get(), host.data(), bytes, cudaMemcpyHostToDevice);
    const float copy_ms = median_ms([&] {
      cudaMemcpyAsync(pinned.get(), logits.get(), bytes, cudaMemcpyDeviceToHost, nullptr);
    });
    for (const Mode& m : modes) {
      std::vector<RowSamplingParams> p(rows, m.p);
      for (int32_t r = 0; r < rows; ++r) p[r].uniform = (r + 0.5) / rows;
      cudaMemcpy(params.get(), p.data(), rows * sizeof(RowSamplingParams), cudaMemcpyHostToDevice);
      const float ms = median_ms([&] {
        autoglm::cuda::sample_rows(static_cast<float*>(logits.get()), rows, kVocab,
                                   static_cast<RowSamplingParams*>(params.get()),
                                   static_cast<LogitAdjustment*>(adjust.get()),
                                   static_cast<RowSample*>(out.get()), scan.get(), nullptr);
      });
      std::printf(
          "[sampling] rows %3d vocab %d mode %-32s %8.1f us  (D2H of the logits: %8.1f us)\n", rows,
          kVocab, m.name, ms * 1e3, copy_ms * 1e3);
    }
  }
  return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1;
}
