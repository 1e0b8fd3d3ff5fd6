// Prometheus text rendering. Names follow vLLM (vllm/v1/metrics/loggers.py) with the `autoglm:`
// prefix so existing dashboards carry over by replacing the prefix; counters carry `_total`
// as prometheus_client writes them. Thread ownership: see prometheus.h.
#include "server/prometheus.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>

#include <fmt/format.h>

namespace autoglm::server {
namespace {

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

// Writes HELP and TYPE, then lets the caller add samples.
class MetricWriter {
 public:
  explicit MetricWriter(std::string labels) : labels_(std::move(labels)) {}

  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void gauge(std::string_view name, std::string_view help, double value) {
    header(name, "gauge", help);
    sample(name, labels_, value);
  }
  void counter(std::string_view name, std::string_view help, double value) {
    std::string full = std::string(name) + "_total";
    header(full, "counter", help);
    sample(full, labels_, value);
  }
  void histogram(std::string_view name, std::string_view help, const Histogram& histogram) {
    header(name, "histogram", help);
    std::vector<uint64_t> cumulative = histogram.cumulative_counts();
    auto bounds = histogram.upper_bounds();
    std::string prefix = labels_.empty() ? "" : labels_ + ",";
    for (size_t i = 0; i < cumulative.size(); ++i) {
      std::string le = i < bounds.size() ? format_number(bounds[i]) : "+Inf";
      sample(std::string(name) + "_bucket", prefix + "le=\"" + le + "\"",
             static_cast<double>(cumulative[i]));
    }
    sample(std::string(name) + "_sum", labels_, histogram.sum());
    sample(std::string(name) + "_count", labels_, static_cast<double>(histogram.count()));
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    if (labels.empty()) {
      out_ += fmt::format("{} {}\n", name, format_number(value));
    } else {
      out_ += fmt::format("{}{{{}}} {}\n", name, labels, format_number(value));
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string labels_;
  std::string out_;
};

void render_engine(MetricWriter& w, const EngineMetricsSnapshot& m) {
  w.gauge("autoglm:num_requests_running", "Number of requests in model execution batches.",
          m.requests_running);
  w.gauge("autoglm:num_requests_waiting", "Number of requests waiting to be processed.",
          m.requests_waiting);
  double usage =
      m.kv_blocks_total > 0 ? static_cast<double>(m.kv_blocks_used) / m.kv_blocks_total : 0.0;
  w.gauge("autoglm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage);
  w.gauge("autoglm:kv_cache_blocks_used", "KV-cache blocks in use.", m.kv_blocks_used);
  w.gauge("autoglm:kv_cache_blocks_total", "KV-cache blocks in the pool.", m.kv_blocks_total);
  w.counter("autoglm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            static_cast<double>(m.prefix_cache_queries));
  w.counter("autoglm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
            static_cast<double>(m.prefix_cache_hits));
  w.counter("autoglm:num_preemptions", "Cumulative number of preemption from the engine.",
            static_cast<double>(m.preemptions));
  w.counter("autoglm:prompt_tokens", "Number of prefill tokens processed.",
            static_cast<double>(m.prompt_tokens));
  w.counter("autoglm:generation_tokens", "Number of generation tokens processed.",
            static_cast<double>(m.generation_tokens));
  w.counter("autoglm:request_success", "Count of finished requests (any finish reason).",
            static_cast<double>(m.requests_finished));
  w.histogram("autoglm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
              m.time_to_first_token_seconds);
  w.histogram("autoglm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
              m.inter_token_latency_seconds);
  w.histogram("autoglm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
              m.e2e_request_latency_seconds);
  w.histogram("autoglm:request_queue_time_seconds",
              "Histogram of time spent in WAITING phase for request.", m.queue_time_seconds);
  w.histogram("autoglm:request_prefill_time_seconds",
              "Histogram of time spent in PREFILL phase for request.",
              m.request_prefill_time_seconds);
  w.histogram("autoglm:request_decode_time_seconds",
              "Histogram of time spent in DECODE phase for request.",
              m.request_decode_time_seconds);
  w.histogram("autoglm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
              m.iteration_tokens);
  w.histogram("autoglm:prefill_step_seconds", "Duration of engine steps that ran prefill.",
              m.prefill_step_seconds);
  w.histogram("autoglm:decode_step_seconds", "Duration of decode-only engine steps.",
              m.decode_step_seconds);
  w.histogram("autoglm:batch_size", "Sequences per engine step.", m.batch_size);
  w.histogram("autoglm:engine_host_gap_seconds",
              "Host time from the end of one engine step to the submission of the next while "
              "requests are pending.",
              m.host_gap_seconds);
  w.histogram("autoglm:device_idle_gap_seconds",
              "Device time idle between consecutive engine steps, timed on the GPU.",
              m.device_idle_gap_seconds);
}

}  // namespace

void HttpRequestCounters::count(std::string_view route, std::string_view method, int status) {
  std::lock_guard lock(mutex_);
  ++counts_[Key{std::string(route), std::string(method), status}];
}

std::map<HttpRequestCounters::Key, uint64_t> HttpRequestCounters::snapshot() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

ProcessMemory read_process_memory() {
  ProcessMemory memory;
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    memory.virtual_bytes = size_pages * page;
    memory.resident_bytes = resident_pages * page;
  }
  return memory;
}

std::string escape_label_value(std::string_view value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// Left out entirely when there is no GPU, so that dashboards do not show a fake zero.
void render_gpus(MetricWriter& w, const std::vector<GpuStats>& gpus) {
  if (gpus.empty()) return;
  const auto gpu_labels = [](const GpuStats& g) {
    return fmt::format("gpu=\"{}\",name=\"{}\"", g.index, escape_label_value(g.name));
  };
  // A value the driver may not report is an optional: a series lists only the GPUs that have
  // one, and is left out when none has.
  const auto reported = [&](auto value_of) {
    return std::any_of(gpus.begin(), gpus.end(),
                       [&](const GpuStats& g) { return value_of(g).has_value(); });
  };
  const auto series = [&](std::string_view name, std::string_view type, std::string_view help,
                          auto value_of) {
    if (!reported(value_of)) return;
    w.header(name, type, help);
    for (const GpuStats& g : gpus) {
      if (const std::optional<double> value = value_of(g)) w.sample(name, gpu_labels(g), *value);
    }
  };
  using Value = std::optional<double>;
  series("autoglm:gpu_memory_used_bytes", "gauge", "GPU memory in use (all processes), from NVML.",
         [](const GpuStats& g) { return Value(static_cast<double>(g.memory_used_bytes)); });
  series("autoglm:gpu_memory_total_bytes", "gauge", "GPU memory installed, from NVML.",
         [](const GpuStats& g) { return Value(static_cast<double>(g.memory_total_bytes)); });
  series("autoglm:gpu_utilization_ratio", "gauge",
         "Share of the last NVML sample period in which a kernel ran on the GPU (0..1).",
         [](const GpuStats& g) { return Value(g.utilization); });
  series("autoglm:gpu_power_watts", "gauge", "Board power draw, from NVML.",
         [](const GpuStats& g) { return g.power_watts; });
  series("autoglm:gpu_power_limit_watts", "gauge", "Enforced board power limit, from NVML.",
         [](const GpuStats& g) { return g.power_limit_watts; });
  // Joules per generated token: its rate over autoglm:generation_tokens_total's.
  series("autoglm:gpu_energy_joules_total", "counter",
         "Energy the GPU has used since its driver was loaded, from NVML.",
         [](const GpuStats& g) { return g.energy_joules; });
  series("autoglm:gpu_sm_clock_hertz", "gauge", "Current SM clock, from NVML.",
         [](const GpuStats& g) { return g.sm_clock_hertz; });
  series("autoglm:gpu_sm_clock_max_hertz", "gauge", "Maximum SM clock, from NVML.",
         [](const GpuStats& g) { return g.sm_clock_max_hertz; });
  if (reported([](const GpuStats& g) { return g.clock_slowdown_reasons; })) {
    constexpr std::string_view kName = "autoglm:gpu_clock_slowdown";
    w.header(kName, "gauge",
             "1 while the driver holds the SM clock down for this reason (power_cap: the board "
             "is at its power limit), else 0; from NVML's clocks-event reasons.");
    for (const GpuStats& g : gpus) {
      if (!g.clock_slowdown_reasons.has_value()) continue;
      for (const ClockSlowdownReason& reason : kClockSlowdownReasons) {
        w.sample(kName, fmt::format("{},reason=\"{}\"", gpu_labels(g), reason.label),
                 (*g.clock_slowdown_reasons & reason.bit) != 0 ? 1.0 : 0.0);
      }
    }
  }
}

std::string render_prometheus(const PrometheusInputs& inputs) {
  MetricWriter engine_writer("model_name=\"" + escape_label_value(inputs.model_name) + "\"");
  if (inputs.engine != nullptr) render_engine(engine_writer, *inputs.engine);
  std::string out = engine_writer.take();

  MetricWriter w("");
  w.header("autoglm:http_requests_total", "counter",
           "HTTP requests answered, by route, method and status.");
  for (const auto& [key, count] : inputs.http_requests) {
    const auto& [route, method, status] = key;
    w.sample("autoglm:http_requests_total",
             fmt::format("route=\"{}\",method=\"{}\",status=\"{}\"", escape_label_value(route),
                         escape_label_value(method), status),
             static_cast<double>(count));
  }
  w.gauge("autoglm:http_open_connections", "Open client connections.",
          static_cast<double>(inputs.open_connections));
  w.gauge("autoglm:http_requests_in_flight", "Requests received and not yet fully answered.",
          static_cast<double>(inputs.requests_in_flight));
  w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
          static_cast<double>(inputs.memory.resident_bytes));
  w.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
          static_cast<double>(inputs.memory.virtual_bytes));
  render_gpus(w, inputs.gpus);
  return out + w.take();
}

}  // namespace autoglm::server
