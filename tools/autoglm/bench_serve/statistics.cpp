// Percentiles and the benchmark summary; see statistics.h. Thread ownership: see statistics.h.
#include "statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace autoglm::bench {

double percentile(std::span<const double> values, double q) {
  if (values.empty()) return 0;
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const double rank = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

LatencySummary summarize_latency(std::vector<double> seconds) {
  LatencySummary s;
  s.samples = seconds.size();
  if (seconds.empty()) return s;
  std::sort(seconds.begin(), seconds.end());
  s.mean_ms = std::accumulate(seconds.begin(), seconds.end(), 0.0) * 1000.0 /
              static_cast<double>(seconds.size());
  s.p50_ms = percentile(seconds, 50) * 1000.0;
  s.p90_ms = percentile(seconds, 90) * 1000.0;
  s.p99_ms = percentile(seconds, 99) * 1000.0;
  return s;
}

BenchmarkSummary summarize(std::span<const RequestRecord> records, double duration_s,
                           int32_t peak_concurrency) {
  BenchmarkSummary out;
  out.duration_s = duration_s;
  out.peak_concurrency = peak_concurrency;
  std::vector<double> ttft, tpot, itl, e2e;
  constexpr size_t kMaxErrorsKept = 5;
  for (const RequestRecord& r : records) {
    if (!r.success) {
      ++out.failed;
      if (out.errors.size() < kMaxErrorsKept &&
          std::find(out.errors.begin(), out.errors.end(), r.error) == out.errors.end()) {
        out.errors.push_back(r.error);
      }
      continue;
    }
    ++out.completed;
    out.total_input_tokens += r.input_tokens();
    out.total_output_tokens += r.output_tokens();
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    if (auto t = r.tpot_s()) tpot.push_back(*t);
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
  }
  if (duration_s > 0) {
    out.request_throughput = out.completed / duration_s;
    out.input_throughput = static_cast<double>(out.total_input_tokens) / duration_s;
    out.output_throughput = static_cast<double>(out.total_output_tokens) / duration_s;
    out.total_token_throughput =
        static_cast<double>(out.total_input_tokens + out.total_output_tokens) / duration_s;
  }
  out.ttft = summarize_latency(std::move(ttft));
  out.tpot = summarize_latency(std::move(tpot));
  out.itl = summarize_latency(std::move(itl));
  out.e2e = summarize_latency(std::move(e2e));
  return out;
}

}  // namespace autoglm::bench
