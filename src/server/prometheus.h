// The /metrics page in the Prometheus text exposition format (0.0.4): the engine's snapshot
// under vLLM's names and meanings with an `autoglm:` prefix, HTTP request counts by route,
// method and status, and the process's memory from /proc/self/statm.
// Thread ownership: HttpRequestCounters is safe from any thread (a mutex); rendering is pure.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "runtime/metrics.h"
#include "server/gpu_metrics.h"

namespace autoglm::server {

class HttpRequestCounters {
 public:
  using Key = std::tuple<std::string, std::string, int>;  // route, method, status
  void count(std::string_view route, std::string_view method, int status);
  std::map<Key, uint64_t> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, uint64_t> counts_;
};

struct ProcessMemory {
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
};
// From /proc/self/statm (pages times the page size); zeros where it cannot be read.
ProcessMemory read_process_memory();

struct PrometheusInputs {
  std::string model_name;                         // the model_name label on engine metrics
  const EngineMetricsSnapshot* engine = nullptr;  // null before the engine has loaded
  std::map<HttpRequestCounters::Key, uint64_t> http_requests;
  ProcessMemory memory;
  int64_t open_connections = 0;
  int64_t requests_in_flight = 0;
  std::vector<GpuStats> gpus;  // empty (and the GPU metrics left out) without a GPU
};

std::string render_prometheus(const PrometheusInputs& inputs);

// Label values escaped per the text format (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace autoglm::server
