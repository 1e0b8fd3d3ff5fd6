// Table and JSON output of `autoglm bench serve`; see report.h. Thread ownership: see report.h.
#include "report.h"

#include <cmath>
#include <string>

namespace autoglm::bench {
namespace {

constexpr int kWidth = 50;

void rule(std::FILE* out, const char* title, char fill) {
  const int len = static_cast<int>(std::char_traits<char>::length(title));
  const int left = (kWidth - len) / 2;
  std::string line(static_cast<size_t>(left), fill);
  line += title;
  line.append(static_cast<size_t>(kWidth - left - len), fill);
  std::fprintf(out, "%s\n", line.c_str());
}

void row(std::FILE* out, const std::string& label, const std::string& value) {
  std::fprintf(out, "%-40s %s\n", (label + ":").c_str(), value.c_str());
}

std::string fixed(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

void latency_rows(std::FILE* out, const char* name, const char* title, const LatencySummary& s) {
  rule(out, title, '-');
  row(out, std::string("Mean ") + name + " (ms)", fixed(s.mean_ms));
  row(out, std::string("P50 ") + name + " (ms)", fixed(s.p50_ms));
  row(out, std::string("P90 ") + name + " (ms)", fixed(s.p90_ms));
  row(out, std::string("P99 ") + name + " (ms)", fixed(s.p99_ms));
}

nlohmann::json latency_json(const LatencySummary& s) {
  return {{"mean_ms", s.mean_ms},
          {"p50_ms", s.p50_ms},
          {"p90_ms", s.p90_ms},
          {"p99_ms", s.p99_ms},
          {"samples", s.samples}};
}

// JSON has no infinity: an unlimited rate is written as the string "inf".
nlohmann::json rate_json(double rate) {
  if (std::isinf(rate) || !(rate > 0)) return "inf";
  return rate;
}

}  // namespace

void print_table(std::FILE* out, const BenchmarkSummary& s, const BenchServeOptions& o,
                 const std::string& model) {
  rule(out, " Serving Benchmark Result ", '=');
  row(out, "Endpoint", o.base_url + o.endpoint);
  row(out, "Model", model);
  row(out, "Successful requests", std::to_string(s.completed));
  row(out, "Failed requests", std::to_string(s.failed));
  row(out, "Request rate (req/s)", std::isinf(o.request_rate) ? "inf" : fixed(o.request_rate));
  row(out, "Maximum request concurrency",
      o.max_concurrency > 0 ? std::to_string(o.max_concurrency) : "unlimited");
  row(out, "Peak concurrent requests", std::to_string(s.peak_concurrency));
  row(out, "Benchmark duration (s)", fixed(s.duration_s));
  row(out, "Total input tokens", std::to_string(s.total_input_tokens));
  row(out, "Total generated tokens", std::to_string(s.total_output_tokens));
  row(out, "Request throughput (req/s)", fixed(s.request_throughput));
  row(out, "Input token throughput (tok/s)", fixed(s.input_throughput));
  row(out, "Output token throughput (tok/s)", fixed(s.output_throughput));
  row(out, "Total token throughput (tok/s)", fixed(s.total_token_throughput));
  latency_rows(out, "TTFT", "Time to First Token", s.ttft);
  latency_rows(out, "TPOT", "Time per Output Token (excl. 1st token)", s.tpot);
  latency_rows(out, "ITL", "Inter-token Latency", s.itl);
  latency_rows(out, "E2EL", "End-to-end Latency", s.e2e);
  rule(out, "", '=');
  for (const std::string& e : s.errors) std::fprintf(out, "error: %s\n", e.c_str());
}

nlohmann::json report_json(const BenchmarkSummary& s, const BenchServeOptions& o,
                           const std::string& model, std::span<const RequestRecord> records) {
  nlohmann::json params = {
      {"base_url", o.base_url},
      {"endpoint", o.endpoint},
      {"model", model},
      {"dataset", o.dataset},
      {"prompt_format", o.tokenizer_dir.empty() ? "token_ids" : "text"},
      {"tokenizer", o.tokenizer_dir},
      {"num_prompts", o.random.num_prompts},
      {"input_len", o.random.input_len},
      {"output_len", o.random.output_len},
      {"range_ratio", o.random.range_ratio},
      {"vocab_size", o.random.vocab_size},
      {"seed", o.random.seed},
      {"request_rate", rate_json(o.request_rate)},
      {"burstiness", o.burstiness},
      {"max_concurrency", o.max_concurrency > 0 ? nlohmann::json(o.max_concurrency) : nullptr},
      {"ignore_eos", o.ignore_eos},
      {"temperature", o.temperature},
      {"timeout_s", o.timeout_s},
  };
  nlohmann::json requests = nlohmann::json::array();
  for (const RequestRecord& r : records) {
    nlohmann::json one = {{"success", r.success},
                          {"planned_input_tokens", r.planned_input_tokens},
                          {"max_tokens", r.planned_output_tokens},
                          {"input_tokens", r.input_tokens()},
                          {"output_tokens", r.output_tokens()},
                          {"start_s", r.start_s},
                          {"ttft_ms", r.ttft_s * 1000.0},
                          {"itl_samples", r.itl_s.size()},
                          {"e2e_ms", r.e2e_s * 1000.0}};
    if (!r.success) one["error"] = r.error;
    requests.push_back(std::move(one));
  }
  return {{"parameters", std::move(params)},
          {"completed", s.completed},
          {"failed", s.failed},
          {"duration_s", s.duration_s},
          {"total_input_tokens", s.total_input_tokens},
          {"total_output_tokens", s.total_output_tokens},
          {"request_throughput", s.request_throughput},
          {"input_throughput", s.input_throughput},
          {"output_throughput", s.output_throughput},
          {"total_token_throughput", s.total_token_throughput},
          {"peak_concurrency", s.peak_concurrency},
          {"ttft", latency_json(s.ttft)},
          {"tpot", latency_json(s.tpot)},
          {"itl", latency_json(s.itl)},
          {"e2el", latency_json(s.e2e)},
          {"errors", s.errors},
          {"requests", std::move(requests)}};
}

}  // namespace autoglm::bench
