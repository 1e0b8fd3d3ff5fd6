// Summary statistics of a `autoglm bench serve` run: percentiles and the throughput and
// latency figures that vLLM's `bench serve` reports, computed from the per-request records.
// Thread ownership: plain functions over values; the caller's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "request_record.h"

namespace autoglm::bench {

// The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's
// default "linear" method, which vLLM uses). Returns 0 for an empty sample.
double percentile(std::span<const double> values, double q);

// Mean, p50, p90, p99 of one latency, in milliseconds.
struct LatencySummary {
  double mean_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  size_t samples = 0;
};
LatencySummary summarize_latency(std::vector<double> seconds);

struct BenchmarkSummary {
  int32_t completed = 0;
  int32_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;   // over successful requests
  int64_t total_output_tokens = 0;  // over successful requests
  double request_throughput = 0;    // successful requests per second
  double input_throughput = 0;      // tokens per second
  double output_throughput = 0;
  double total_token_throughput = 0;
  int32_t peak_concurrency = 0;  // most requests in flight at once
  LatencySummary ttft, tpot, itl, e2e;
  std::vector<std::string> errors;  // the first few distinct failure messages
};

// `duration_s` is the wall time from the first request sent to the last response finished.
BenchmarkSummary summarize(std::span<const RequestRecord> records, double duration_s,
                           int32_t peak_concurrency);

}  // namespace autoglm::bench
