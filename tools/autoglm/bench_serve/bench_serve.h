// `autoglm bench serve`: a load generator for any OpenAI-compatible server, in the manner of
// `vllm bench serve`. Options, workload, run and report in one entry point for the CLI.
// Thread ownership: run_bench_serve() runs on the caller's (main) thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "workload.h"

namespace autoglm::bench {

struct BenchServeOptions {
  std::string base_url = "http://127.0.0.1:8080";
  std::string endpoint = "/v1/completions";
  std::string model;  // empty: the first id of GET /v1/models
  std::string dataset = "random";
  std::string tokenizer_dir;  // text prompts from this tokenizer; else token-id prompts
  RandomDatasetOptions random;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  int32_t max_concurrency = 0;  // 0: no limit
  bool ignore_eos = false;
  double temperature = 0.0;
  std::string api_key;
  bool insecure = false;
  double timeout_s = 600.0;
  std::string json_path;  // "-" for stdout (the table then goes to stderr)
};

// Runs the benchmark and prints the table (and JSON). Returns the process exit status:
// 0 when at least one request succeeded, 1 when every request failed. Set-up problems
// (bad options, unreachable server for /v1/models) throw autoglm::Error.
int run_bench_serve(const BenchServeOptions& options);

}  // namespace autoglm::bench
