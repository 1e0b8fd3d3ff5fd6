// The output of `autoglm bench serve`: a table like vllm's "Serving Benchmark Result" and a
// JSON document with the same numbers plus the run's parameters.
// Thread ownership: plain functions; the caller's thread.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <span>

#include "bench_serve.h"
#include "request_record.h"
#include "statistics.h"

namespace autoglm::bench {

void print_table(std::FILE* out, const BenchmarkSummary& summary, const BenchServeOptions& options,
                 const std::string& model);

// `records` add a compact per-request list (lengths, ttft, e2e, error).
nlohmann::json report_json(const BenchmarkSummary& summary, const BenchServeOptions& options,
                           const std::string& model, std::span<const RequestRecord> records);

}  // namespace autoglm::bench
