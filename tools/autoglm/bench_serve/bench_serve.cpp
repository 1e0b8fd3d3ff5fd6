// `autoglm bench serve` end to end: checks the options, finds the model name, builds the
// prompts and the arrival schedule, runs the requests, and prints the report.
// Prompt format: without --tokenizer the random prompts are token-id arrays sent to
// /v1/completions as `prompt: [ids]` (exact lengths, ids uniform in [0, --vocab-size));
// with --tokenizer DIR they are text built with that tokenizer (the only choice for
// /v1/chat/completions, whose chat template then adds a few tokens of its own).
// Thread ownership: see bench_serve.h.
#include "bench_serve.h"

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http_client.h"
#include "report.h"
#include "runner.h"
#include "statistics.h"

namespace autoglm::bench {
namespace {

bool is_chat_endpoint(const std::string& endpoint) {
  return endpoint.ends_with("/chat/completions");
}

void check_options(const BenchServeOptions& o) {
  if (o.dataset != "random") {
    fail(ErrorCode::kInvalidArgument, "--dataset: only 'random' is supported, not " + o.dataset);
  }
  if (o.endpoint.empty() || o.endpoint.front() != '/') {
    fail(ErrorCode::kInvalidArgument, "--endpoint must start with '/': " + o.endpoint);
  }
  if (is_chat_endpoint(o.endpoint) && o.tokenizer_dir.empty()) {
    fail(ErrorCode::kInvalidArgument,
         "--endpoint " + o.endpoint + " takes text messages: give --tokenizer DIR");
  }
  if (o.tokenizer_dir.empty() && o.random.vocab_size < 1) {
    fail(ErrorCode::kInvalidArgument,
         "token-id prompts need --vocab-size N (the model's vocabulary size), or give "
         "--tokenizer DIR for text prompts");
  }
  if (std::isnan(o.request_rate) || o.request_rate <= 0) {
    fail(ErrorCode::kInvalidArgument, "--request-rate must be > 0 or inf");
  }
  if (o.max_concurrency < 0) fail(ErrorCode::kInvalidArgument, "--max-concurrency must be >= 0");
  if (!(o.timeout_s > 0)) fail(ErrorCode::kInvalidArgument, "--timeout must be > 0");
}

// The first model id that GET /v1/models lists.
std::string discover_model(const ServerAddress& address, const HttpClientOptions& http) {
  HttpExchange get;
  get.target = "/v1/models";
  HttpResult r = HttpClient::fetch(address, http, std::move(get));
  if (!r.error.empty()) {
    fail(ErrorCode::kNotFound, "GET /v1/models (to find --model): " + r.error);
  }
  const nlohmann::json list = nlohmann::json::parse(r.body, nullptr, false);
  if (list.is_object() && list.contains("data") && list["data"].is_array() &&
      !list["data"].empty() && list["data"][0].is_object() && list["data"][0].contains("id") &&
      list["data"][0]["id"].is_string()) {
    return list["data"][0]["id"].get<std::string>();
  }
  fail(ErrorCode::kNotFound, "GET /v1/models listed no model id; give --model");
}

nlohmann::json request_body(const BenchServeOptions& o, const std::string& model,
                            const BenchPrompt& prompt) {
  nlohmann::json body = {{"model", model},
                         {"max_tokens", prompt.output_tokens},
                         {"temperature", o.temperature},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
  if (is_chat_endpoint(o.endpoint)) {
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", prompt.text}}});
  } else if (prompt.token_ids.empty()) {
    body["prompt"] = prompt.text;
  } else {
    body["prompt"] = prompt.token_ids;
  }
  if (o.ignore_eos) body["ignore_eos"] = true;  // vLLM's extra field; others ignore it
  return body;
}

std::vector<PlannedRequest> plan_requests(const BenchServeOptions& o, const std::string& model) {
  std::vector<BenchPrompt> prompts =
      o.tokenizer_dir.empty() ? random_token_prompts(o.random)
                              : random_text_prompts(o.random, Tokenizer::load(o.tokenizer_dir));
  const std::vector<double> arrivals = arrival_schedule(
      static_cast<int32_t>(prompts.size()), o.request_rate, o.burstiness, o.random.seed);
  std::vector<PlannedRequest> plan(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    plan[i].body = request_body(o, model, prompts[i]).dump();
    plan[i].arrival_s = arrivals[i];
    plan[i].input_tokens = prompts[i].input_tokens;
    plan[i].output_tokens = prompts[i].output_tokens;
  }
  return plan;
}

// Every request in flight holds a socket; with --request-rate inf and no concurrency cap that
// is --num-prompts of them, past the usual soft limit of 1024 descriptors.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);  // best effort: failures then show per request
  }
}

void write_json(const std::string& path, const nlohmann::json& report) {
  const std::string text = report.dump(2) + "\n";
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  if (!file.flush()) fail(ErrorCode::kInvalidArgument, "cannot write --json file " + path);
}

}  // namespace

int run_bench_serve(const BenchServeOptions& o) {
  check_options(o);
  const ServerAddress address = parse_base_url(o.base_url);
  const HttpClientOptions http{o.api_key, o.insecure, o.timeout_s};
  const std::string model = o.model.empty() ? discover_model(address, http) : o.model;
  std::vector<PlannedRequest> plan = plan_requests(o, model);

  // With --json - the JSON owns stdout, so the table and progress go to stderr.
  std::FILE* table_out = o.json_path == "-" ? stderr : stdout;
  std::fprintf(stderr, "bench serve: %zu requests to %s%s (model %s)\n", plan.size(),
               o.base_url.c_str(), o.endpoint.c_str(), model.c_str());
  raise_open_file_limit();
  RunOptions run{o.endpoint, o.max_concurrency, true};
  const RunOutcome outcome = run_requests(address, http, run, std::move(plan));
  const BenchmarkSummary summary =
      summarize(outcome.records, outcome.duration_s, outcome.peak_concurrency);
  print_table(table_out, summary, o, model);
  std::fflush(table_out);
  if (!o.json_path.empty())
    write_json(o.json_path, report_json(summary, o, model, outcome.records));
  return summary.completed == 0 ? 1 : 0;
}

}  // namespace autoglm::bench
