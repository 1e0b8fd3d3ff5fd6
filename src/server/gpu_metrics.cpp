// See gpu_metrics.h. NVML's few entry points are declared here by hand, with the layouts its
// public API documents: the header ships with the driver/CUDA toolkit, not with Debian, and a
// build without the toolkit must still offer the metrics where a driver is present.
#include "server/gpu_metrics.h"

#include <dlfcn.h>

namespace autoglm::server {
namespace {

using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total, free, used;
};
struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu, memory;
};
constexpr int kNvmlClockSm = 1;  // NVML_CLOCK_SM of nvmlClockType_t

}  // namespace

struct GpuMonitor::Nvml {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*count)(unsigned int*) = nullptr;
  NvmlReturn (*handle)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*name)(NvmlDevice, char*, unsigned int) = nullptr;
  // Optional: an older driver without one of these still serves the metrics above.
  NvmlReturn (*power)(NvmlDevice, unsigned int*) = nullptr;         // milliwatts
  NvmlReturn (*power_limit)(NvmlDevice, unsigned int*) = nullptr;   // milliwatts
  NvmlReturn (*energy)(NvmlDevice, unsigned long long*) = nullptr;  // millijoules
  NvmlReturn (*clock)(NvmlDevice, int, unsigned int*) = nullptr;    // MHz
  NvmlReturn (*max_clock)(NvmlDevice, int, unsigned int*) = nullptr;
  NvmlReturn (*slowdown_reasons)(NvmlDevice, unsigned long long*) = nullptr;
  std::vector<NvmlDevice> devices;

  template <typename F>
  bool bind(F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(dlsym(library, symbol));
    return fn != nullptr;
  }

  void read_power_and_clocks(NvmlDevice device, GpuStats& stats) const {
    unsigned int value = 0;
    if (power != nullptr && power(device, &value) == 0) stats.power_watts = value * 1e-3;
    if (power_limit != nullptr && power_limit(device, &value) == 0) {
      stats.power_limit_watts = value * 1e-3;
    }
    unsigned long long millijoules = 0;
    if (energy != nullptr && energy(device, &millijoules) == 0) {
      stats.energy_joules = static_cast<double>(millijoules) * 1e-3;
    }
    if (clock != nullptr && clock(device, kNvmlClockSm, &value) == 0) {
      stats.sm_clock_hertz = value * 1e6;
    }
    if (max_clock != nullptr && max_clock(device, kNvmlClockSm, &value) == 0) {
      stats.sm_clock_max_hertz = value * 1e6;
    }
    unsigned long long reasons = 0;
    if (slowdown_reasons != nullptr && slowdown_reasons(device, &reasons) == 0) {
      stats.clock_slowdown_reasons = reasons;
    }
  }
};

GpuMonitor::GpuMonitor() {
  auto nvml = std::make_unique<Nvml>();
  nvml->library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml->library == nullptr) {
    why_ = "libnvidia-ml.so.1 not found (no NVIDIA driver)";
    return;
  }
  if (!nvml->bind(nvml->init, "nvmlInit_v2") || !nvml->bind(nvml->shutdown, "nvmlShutdown") ||
      !nvml->bind(nvml->count, "nvmlDeviceGetCount_v2") ||
      !nvml->bind(nvml->handle, "nvmlDeviceGetHandleByIndex_v2") ||
      !nvml->bind(nvml->memory, "nvmlDeviceGetMemoryInfo") ||
      !nvml->bind(nvml->utilization, "nvmlDeviceGetUtilizationRates") ||
      !nvml->bind(nvml->name, "nvmlDeviceGetName")) {
    why_ = "libnvidia-ml.so.1 lacks an expected symbol";
    dlclose(nvml->library);
    return;
  }
  nvml->bind(nvml->power, "nvmlDeviceGetPowerUsage");
  nvml->bind(nvml->power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  nvml->bind(nvml->energy, "nvmlDeviceGetTotalEnergyConsumption");
  nvml->bind(nvml->clock, "nvmlDeviceGetClockInfo");
  nvml->bind(nvml->max_clock, "nvmlDeviceGetMaxClockInfo");
  // The name since driver 535; the older one has the same signature and bits.
  if (!nvml->bind(nvml->slowdown_reasons, "nvmlDeviceGetCurrentClocksEventReasons")) {
    nvml->bind(nvml->slowdown_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
  }
  if (nvml->init() != 0) {
    why_ = "nvmlInit failed (driver not loaded?)";
    dlclose(nvml->library);
    return;
  }
  unsigned int count = 0;
  if (nvml->count(&count) == 0) {
    for (unsigned int i = 0; i < count; ++i) {
      NvmlDevice device = nullptr;
      if (nvml->handle(i, &device) == 0) nvml->devices.push_back(device);
    }
  }
  if (nvml->devices.empty()) why_ = "NVML reports no GPU";
  nvml_ = std::move(nvml);
}

GpuMonitor::~GpuMonitor() {
  if (nvml_) {
    nvml_->shutdown();
    dlclose(nvml_->library);
  }
}

bool GpuMonitor::available() const {
  return nvml_ && !nvml_->devices.empty();
}

std::string GpuMonitor::why_unavailable() const {
  return why_;
}

std::vector<GpuStats> GpuMonitor::sample() const {
  std::vector<GpuStats> out;
  if (!available()) return out;
  for (size_t i = 0; i < nvml_->devices.size(); ++i) {
    NvmlMemory memory{};
    NvmlUtilization utilization{};
    if (nvml_->memory(nvml_->devices[i], &memory) != 0) continue;
    GpuStats stats;
    stats.index = static_cast<uint32_t>(i);
    stats.memory_used_bytes = memory.used;
    stats.memory_total_bytes = memory.total;
    if (nvml_->utilization(nvml_->devices[i], &utilization) == 0) {
      stats.utilization = utilization.gpu / 100.0;
    }
    char name[96] = {};
    if (nvml_->name(nvml_->devices[i], name, sizeof(name)) == 0) stats.name = name;
    nvml_->read_power_and_clocks(nvml_->devices[i], stats);
    out.push_back(std::move(stats));
  }
  return out;
}

}  // namespace autoglm::server
