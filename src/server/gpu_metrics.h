// GPU memory, utilisation, power and SM clock for /metrics, read from the driver's NVML library,
// which is loaded at run time (dlopen of libnvidia-ml.so.1): the same binary runs on machines
// without a GPU or driver, where the GPU metrics are simply left out. Power and clocks matter to
// an operator because a busy Hopper serving step runs at its board power limit, where the driver
// lowers the SM clock (1.6 of 1.98 GHz on an H200 at 256 streams): the clock-slowdown reasons
// say when throughput is bounded by power rather than by the engine.
// Thread ownership: GpuMonitor is safe from any thread (NVML calls are thread-safe; the handle
// table is fixed after construction).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace autoglm::server {

struct GpuStats {
  uint32_t index = 0;
  std::string name;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  double utilization = 0.0;  // share of the last sample period a kernel ran, 0..1
  // Each absent where the driver does not report it.
  std::optional<double> power_watts;        // board power draw
  std::optional<double> power_limit_watts;  // the enforced limit
  std::optional<double> energy_joules;      // consumed since the driver was loaded
  std::optional<double> sm_clock_hertz;
  std::optional<double> sm_clock_max_hertz;
  std::optional<uint64_t> clock_slowdown_reasons;  // NVML's clocks-event-reason bit mask
};

// The clock-slowdown reasons /metrics names, with their NVML bits.
struct ClockSlowdownReason {
  const char* label;
  uint64_t bit;
};
inline constexpr ClockSlowdownReason kClockSlowdownReasons[] = {
    {"power_cap", 0x4},   {"hw_slowdown", 0x8},     {"sw_thermal", 0x20},
    {"hw_thermal", 0x40}, {"hw_power_brake", 0x80},
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
