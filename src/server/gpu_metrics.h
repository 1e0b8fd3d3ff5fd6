// GPU memory and utilisation for /metrics, read from the driver's NVML library, which is loaded
// at run time (dlopen of libnvidia-ml.so.1): the same binary runs on machines without a GPU or
// driver, where the GPU metrics are simply left out.
// Thread ownership: GpuMonitor is safe from any thread (NVML calls are thread-safe; the handle
// table is fixed after construction).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace autoglm::server {

struct GpuStats {
  uint32_t index = 0;
  std::string name;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  double utilization = 0.0;  // share of the last sample period a kernel ran, 0..1
};

class GpuMonitor {
 public:
  GpuMonitor();  // loads NVML if present; never throws
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  bool available() const;
  std::string why_unavailable() const;  // empty when available
  // One entry per visible GPU; empty without NVML or GPUs. A GPU whose query fails is skipped.
  std::vector<GpuStats> sample() const;

 private:
  struct Nvml;
  std::unique_ptr<Nvml> nvml_;
  std::string why_;
};

}  // namespace autoglm::server
