// The /metrics text: parsed back with a strict reader of the Prometheus text format 0.0.4
// (HELP/TYPE before samples, label syntax, numeric values, cumulative histogram buckets ending
// in +Inf == _count) and checked for the vLLM-named values. Thread ownership: test thread.
#include "server/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace autoglm::server {
namespace {

struct Sample {
  std::string name;
  std::string labels;
  double value;
};

struct Parsed {
  std::map<std::string, std::string> types;  // family -> type
  std::vector<Sample> samples;
};

// The family a sample belongs to (histogram suffixes stripped when the base is a histogram).
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto found = types.find(base);
      if (found != types.end() && found->second == "histogram") return base;
    }
  }
  return name;
}

Parsed parse_exposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+))");
  Parsed parsed;
  std::istringstream lines(text);
  std::string line;
  std::set<std::string> helped;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      helped.insert(m[1]);
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(parsed.types.emplace(m[1], m[2]).second) << "TYPE twice: " << line;
    } else if (std::regex_match(line, m, kSample)) {
      std::string value_text = m[4];
      double value = value_text == "+Inf" ? INFINITY : std::stod(value_text);
      std::string family = family_of(m[1], parsed.types);
      EXPECT_TRUE(parsed.types.count(family)) << "sample before its TYPE: " << line;
      EXPECT_TRUE(helped.count(family)) << "sample without HELP: " << line;
      parsed.samples.push_back({m[1], m[3], value});
    } else {
      ADD_FAILURE() << "not a valid exposition line: '" << line << "'";
    }
  }
  return parsed;
}

const Sample* find(const Parsed& parsed, const std::string& name, const std::string& labels) {
  for (const Sample& sample : parsed.samples) {
    if (sample.name == name && sample.labels == labels) return &sample;
  }
  return nullptr;
}

EngineMetricsSnapshot busy_engine() {
  EngineMetricsSnapshot m;
  m.requests_running = 3;
  m.requests_waiting = 2;
  m.kv_blocks_used = 25;
  m.kv_blocks_total = 100;
  m.prefix_cache_queries = 40;
  m.prefix_cache_hits = 16;
  m.preemptions = 1;
  m.prompt_tokens = 120;
  m.generation_tokens = 77;
  m.requests_finished = 4;
  for (double v : {0.002, 0.03, 0.5, 3000.0}) m.time_to_first_token_seconds.observe(v);
  m.e2e_request_latency_seconds.observe(1.5);
  return m;
}

TEST(Prometheus, EngineMetricsUseVllmNamesAndParseBack) {
  EngineMetricsSnapshot engine = busy_engine();
  PrometheusInputs inputs;
  inputs.model_name = "tiny \"q\"";
  inputs.engine = &engine;
  Parsed parsed = parse_exposition(render_prometheus(inputs));
  std::string model = "model_name=\"tiny \\\"q\\\"\"";
  EXPECT_EQ(parsed.types.at("autoglm:num_requests_running"), "gauge");
  EXPECT_EQ(parsed.types.at("autoglm:prompt_tokens_total"), "counter");
  EXPECT_EQ(parsed.types.at("autoglm:time_to_first_token_seconds"), "histogram");
  EXPECT_EQ(find(parsed, "autoglm:num_requests_running", model)->value, 3);
  EXPECT_EQ(find(parsed, "autoglm:num_requests_waiting", model)->value, 2);
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:kv_cache_usage_perc", model)->value, 0.25);
  EXPECT_EQ(find(parsed, "autoglm:prefix_cache_queries_total", model)->value, 40);
  EXPECT_EQ(find(parsed, "autoglm:prefix_cache_hits_total", model)->value, 16);
  EXPECT_EQ(find(parsed, "autoglm:num_preemptions_total", model)->value, 1);
  EXPECT_EQ(find(parsed, "autoglm:generation_tokens_total", model)->value, 77);
  for (const char* name :
       {"autoglm:inter_token_latency_seconds", "autoglm:request_queue_time_seconds",
        "autoglm:e2e_request_latency_seconds"}) {
    EXPECT_EQ(parsed.types.at(name), "histogram") << name;
  }
}

// An H200 with the memory and utilisation NVML always reports, and nothing else.
GpuStats h200(uint32_t index, uint64_t memory_used, double utilization) {
  GpuStats g;
  g.index = index;
  g.name = "NVIDIA H200";
  g.memory_used_bytes = memory_used;
  g.memory_total_bytes = 141ull << 30;
  g.utilization = utilization;
  return g;
}

TEST(Prometheus, GpuMetricsPerDeviceAndAbsentWithoutGpus) {
  PrometheusInputs inputs;
  inputs.model_name = "m";
  EXPECT_EQ(render_prometheus(inputs).find("autoglm:gpu_"), std::string::npos);
  inputs.gpus = {h200(0, 20ull << 30, 0.75), h200(1, 1ull << 30, 0.0)};
  Parsed parsed = parse_exposition(render_prometheus(inputs));
  EXPECT_EQ(parsed.types.at("autoglm:gpu_memory_used_bytes"), "gauge");
  const std::string gpu0 = "gpu=\"0\",name=\"NVIDIA H200\"";
  const std::string gpu1 = "gpu=\"1\",name=\"NVIDIA H200\"";
  EXPECT_EQ(find(parsed, "autoglm:gpu_memory_used_bytes", gpu0)->value, 20.0 * (1ull << 30));
  EXPECT_EQ(find(parsed, "autoglm:gpu_memory_total_bytes", gpu1)->value, 141.0 * (1ull << 30));
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_utilization_ratio", gpu0)->value, 0.75);
  // Power and clocks the driver did not report are left out, not shown as zero.
  for (const char* name : {"autoglm:gpu_power_watts", "autoglm:gpu_power_limit_watts",
                           "autoglm:gpu_energy_joules_total", "autoglm:gpu_sm_clock_hertz",
                           "autoglm:gpu_sm_clock_max_hertz", "autoglm:gpu_clock_slowdown"}) {
    EXPECT_EQ(parsed.types.count(name), 0u) << name;
  }
}

TEST(Prometheus, GpuPowerClockAndSlowdownReasonsWhereReported) {
  PrometheusInputs inputs;
  inputs.model_name = "m";
  GpuStats capped = h200(0, 20ull << 30, 1.0);
  capped.power_watts = 691.5;
  capped.power_limit_watts = 700.0;
  capped.energy_joules = 123456.789;
  capped.sm_clock_hertz = 1620e6;
  capped.sm_clock_max_hertz = 1980e6;
  capped.clock_slowdown_reasons = 0x4 | 0x40;  // power cap and HW thermal
  GpuStats old_driver = h200(1, 1ull << 30, 0.0);
  old_driver.power_watts = 80.0;  // nothing else reported
  inputs.gpus = {capped, old_driver};
  Parsed parsed = parse_exposition(render_prometheus(inputs));
  const std::string gpu0 = "gpu=\"0\",name=\"NVIDIA H200\"";
  const std::string gpu1 = "gpu=\"1\",name=\"NVIDIA H200\"";
  EXPECT_EQ(parsed.types.at("autoglm:gpu_power_watts"), "gauge");
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_power_watts", gpu0)->value, 691.5);
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_power_watts", gpu1)->value, 80.0);
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_power_limit_watts", gpu0)->value, 700.0);
  EXPECT_EQ(parsed.types.at("autoglm:gpu_energy_joules_total"), "counter");
  EXPECT_NEAR(find(parsed, "autoglm:gpu_energy_joules_total", gpu0)->value, 123456.789, 1e-3);
  EXPECT_EQ(find(parsed, "autoglm:gpu_energy_joules_total", gpu1), nullptr);
  EXPECT_EQ(find(parsed, "autoglm:gpu_power_limit_watts", gpu1), nullptr);
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_sm_clock_hertz", gpu0)->value, 1620e6);
  EXPECT_DOUBLE_EQ(find(parsed, "autoglm:gpu_sm_clock_max_hertz", gpu0)->value, 1980e6);
  const auto reason = [&](const char* label) {
    return find(parsed, "autoglm:gpu_clock_slowdown", gpu0 + ",reason=\"" + label + "\"");
  };
  EXPECT_EQ(reason("power_cap")->value, 1);
  EXPECT_EQ(reason("hw_thermal")->value, 1);
  EXPECT_EQ(reason("hw_slowdown")->value, 0);
  EXPECT_EQ(reason("sw_thermal")->value, 0);
  EXPECT_EQ(reason("hw_power_brake")->value, 0);
  EXPECT_EQ(find(parsed, "autoglm:gpu_clock_slowdown", gpu1 + ",reason=\"power_cap\""), nullptr);
}

// Without a driver the monitor says why and samples nothing; with one (the GPU machine) every
// GPU reports a non-zero total.
TEST(Prometheus, GpuMonitorSamplesWhatTheDriverReports) {
  const GpuMonitor monitor;
  const std::vector<GpuStats> gpus = monitor.sample();
  if (!monitor.available()) {
    EXPECT_FALSE(monitor.why_unavailable().empty());
    EXPECT_TRUE(gpus.empty());
    GTEST_SKIP() << "no GPU: " << monitor.why_unavailable();
  }
  ASSERT_FALSE(gpus.empty());
  for (const GpuStats& g : gpus) {
    EXPECT_GT(g.memory_total_bytes, 0u);
    EXPECT_LE(g.memory_used_bytes, g.memory_total_bytes);
    EXPECT_GE(g.utilization, 0.0);
    EXPECT_LE(g.utilization, 1.0);
    // Every datacenter GPU reports these; an idle one draws power and has a clock.
    ASSERT_TRUE(g.power_watts.has_value());
    EXPECT_GT(*g.power_watts, 0.0);
    ASSERT_TRUE(g.power_limit_watts.has_value());
    EXPECT_GE(*g.power_limit_watts, *g.power_watts * 0.5);
    ASSERT_TRUE(g.sm_clock_hertz.has_value());
    ASSERT_TRUE(g.sm_clock_max_hertz.has_value());
    EXPECT_GT(*g.sm_clock_hertz, 0.0);
    EXPECT_LE(*g.sm_clock_hertz, *g.sm_clock_max_hertz);
    EXPECT_TRUE(g.clock_slowdown_reasons.has_value());
    ASSERT_TRUE(g.energy_joules.has_value());
    EXPECT_GT(*g.energy_joules, 0.0);
  }
}

TEST(Prometheus, HistogramBucketsAreCumulativeAndEndAtCount) {
  EngineMetricsSnapshot engine = busy_engine();
  PrometheusInputs inputs;
  inputs.model_name = "m";
  inputs.engine = &engine;
  Parsed parsed = parse_exposition(render_prometheus(inputs));
  double previous = 0;
  double last = -1;
  size_t buckets = 0;
  for (const Sample& sample : parsed.samples) {
    if (sample.name != "autoglm:time_to_first_token_seconds_bucket") continue;
    EXPECT_GE(sample.value, previous);
    previous = last = sample.value;
    ++buckets;
    if (buckets == 1) {
      EXPECT_NE(sample.labels.find("le=\"0.001\""), std::string::npos);
    }
  }
  EXPECT_EQ(buckets, time_to_first_token_buckets_seconds().size() + 1);
  EXPECT_EQ(last, 4);
  EXPECT_EQ(find(parsed, "autoglm:time_to_first_token_seconds_count", "model_name=\"m\"")->value,
            4);
  EXPECT_NEAR(find(parsed, "autoglm:time_to_first_token_seconds_sum", "model_name=\"m\"")->value,
              3000.532, 1e-9);
  // The 0.5 s and the 3000 s observations: le=1 holds three, +Inf all four.
  EXPECT_EQ(find(parsed, "autoglm:time_to_first_token_seconds_bucket", "model_name=\"m\",le=\"1\"")
                ->value,
            3);
}

TEST(Prometheus, HttpCountsAndProcessMemory) {
  HttpRequestCounters counters;
  counters.count("/health", "GET", 200);
  counters.count("/health", "GET", 200);
  counters.count("unmatched", "GET", 404);
  PrometheusInputs inputs;
  inputs.http_requests = counters.snapshot();
  inputs.memory = read_process_memory();
  EXPECT_GT(inputs.memory.resident_bytes, 0u);
  Parsed parsed = parse_exposition(render_prometheus(inputs));
  EXPECT_EQ(parsed.types.count("autoglm:num_requests_running"), 0u);  // no engine yet
  EXPECT_EQ(
      find(parsed, "autoglm:http_requests_total", "route=\"/health\",method=\"GET\",status=\"200\"")
          ->value,
      2);
  EXPECT_EQ(find(parsed, "autoglm:http_requests_total",
                 "route=\"unmatched\",method=\"GET\",status=\"404\"")
                ->value,
            1);
  EXPECT_GT(find(parsed, "process_resident_memory_bytes", "")->value, 0);
}

}  // namespace
}  // namespace autoglm::server
