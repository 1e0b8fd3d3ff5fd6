// `autoglm bench`: measuring tools, not tests (results and exact command lines go in
// docs/PERFORMANCE.md).
// - `bench latency`: prefill and batch-1 decode speed of the CPU backend on a model directory,
//   with random token ids (no tokenizer involved), plus peak RSS.
// - `bench serve`: a load generator for any OpenAI-compatible server (bench_serve/).
// Thread ownership: main thread (the backend's pool runs inside forward(); bench serve runs
// its io_context on the main thread).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "bench_serve/bench_serve.h"
#include "commands.h"
#include "core/error.h"
#include "model/model_dir.h"

namespace autoglm::cli {
namespace {

struct BenchLatencyArgs {
  std::string model_dir;
  int32_t prompt_tokens = 512;
  int32_t decode_tokens = 128;
  int threads = 0;
  int32_t block_size = 16;
  uint32_t seed = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One sequence in blocks [first_block, ...): runs tokens at positions [pos, pos + ids.size()).
class SequenceDriver {
 public:
  SequenceDriver(Backend& backend, int32_t first_block, int32_t blocks)
      : backend_(backend), logits_(backend.vocab_size()), table_(blocks) {
    for (int32_t i = 0; i < blocks; ++i) table_[i] = first_block + i;
  }
  void step(const std::vector<int32_t>& ids) {
    const int32_t n = static_cast<int32_t>(ids.size());
    const int32_t bs = backend_.kv_pool().block_size;
    positions_.resize(ids.size());
    slots_.resize(ids.size());
    for (int32_t i = 0; i < n; ++i) {
      positions_[i] = position_ + i;
      slots_[i] = table_[positions_[i] / bs] * bs + positions_[i] % bs;
    }
    const std::vector<int32_t> start{0, n}, context{position_ + n}, rows{n - 1};
    ForwardBatch b{ids,    positions_, start, context, table_, static_cast<int32_t>(table_.size()),
                   slots_, rows};
    backend_.forward(b, logits_);
    position_ += n;
  }

 private:
  Backend& backend_;
  std::vector<float> logits_;
  std::vector<int32_t> table_, positions_, slots_;
  int32_t position_ = 0;
};

int run_bench_latency(const BenchLatencyArgs& a) {
  if (a.prompt_tokens <= 0 || a.decode_tokens <= 0) {
    fail(ErrorCode::kInvalidArgument, "--prompt-tokens and --decode-tokens must be > 0");
  }
  const auto model = load_model_directory(a.model_dir);
  const int32_t total = a.prompt_tokens + a.decode_tokens;
  if (total > model->config.max_position_embeddings) {
    fail(ErrorCode::kInvalidArgument, "prompt + decode tokens exceed the model context");
  }
  const int32_t warm_tokens = 8;
  const int32_t blocks = (total + a.block_size - 1) / a.block_size;
  const int32_t warm_blocks = (warm_tokens + a.block_size - 1) / a.block_size;
  CpuBackend backend(*model, KvPoolShape{blocks + warm_blocks, a.block_size},
                     CpuBackendOptions{a.threads});
  std::mt19937 rng(a.seed);
  std::uniform_int_distribution<int32_t> token(0, backend.vocab_size() - 1);
  auto random_ids = [&](int32_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = token(rng);
    return ids;
  };

  // Warm-up in its own blocks: touches every weight page and grows the activation buffers.
  SequenceDriver warm(backend, blocks, warm_blocks);
  warm.step(random_ids(warm_tokens));

  SequenceDriver seq(backend, 0, blocks);
  const std::vector<int32_t> prompt = random_ids(a.prompt_tokens);
  auto t0 = std::chrono::steady_clock::now();
  seq.step(prompt);
  const double prefill_s = seconds_since(t0);
  std::vector<int32_t> one(1);
  t0 = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < a.decode_tokens; ++i) {
    one[0] = token(rng);
    seq.step(one);
  }
  const double decode_s = seconds_since(t0);

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto& w = model->weights;
  std::printf("model: %s (%.1f M parameters, %.1f MiB of weights, %s)\n", a.model_dir.c_str(),
              w.parameter_count / 1e6, w.weight_bytes / 1048576.0,
              std::string(dtype_name(w.embed_tokens.dtype)).c_str());
  std::printf("backend: cpu, %d threads, kernels %s\n", backend.threads(),
              std::string(backend.isa()).c_str());
  std::printf("prefill: %d tokens in %.3f s = %.1f tok/s\n", a.prompt_tokens, prefill_s,
              a.prompt_tokens / prefill_s);
  std::printf("decode:  %d tokens in %.3f s = %.2f tok/s (batch 1, context %d..%d)\n",
              a.decode_tokens, decode_s, a.decode_tokens / decode_s, a.prompt_tokens, total);
  std::printf("peak RSS: %.1f MiB\n", usage.ru_maxrss / 1024.0);
  return 0;
}

void register_bench_serve(CLI::App& bench, int* exit_code) {
  auto o = std::make_shared<bench::BenchServeOptions>();
  o->random.num_prompts = 1000;
  o->random.input_len = 1024;
  o->random.output_len = 128;
  CLI::App* cmd = bench.add_subcommand(
      "serve", "Load-test an OpenAI-compatible server (random prompts, streamed responses)");
  cmd->add_option("--base-url", o->base_url, "Server URL, http:// or https://")
      ->capture_default_str();
  cmd->add_option("--endpoint", o->endpoint, "/v1/completions or /v1/chat/completions")
      ->capture_default_str();
  cmd->add_option("--model", o->model, "Model name to send (default: first id of GET /v1/models)");
  cmd->add_option("--dataset", o->dataset, "Prompt source (only 'random')")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer_dir,
                  "tokenizer.json or model directory: send text prompts built with it "
                  "(default: token-id prompts, which need --vocab-size)");
  cmd->add_option("--vocab-size", o->random.vocab_size,
                  "Token-id prompts draw ids uniformly from [0, N)");
  cmd->add_option("--input-len", o->random.input_len, "Prompt tokens")->capture_default_str();
  cmd->add_option("--output-len", o->random.output_len, "max_tokens per request")
      ->capture_default_str();
  cmd->add_option("--range-ratio", o->random.range_ratio,
                  "Lengths uniform in [len*(1-r), len*(1+r)]")
      ->capture_default_str();
  cmd->add_option("--num-prompts", o->random.num_prompts, "Requests to send")
      ->capture_default_str();
  cmd->add_option("--request-rate", o->request_rate, "Poisson arrivals per second, or inf")
      ->capture_default_str();
  cmd->add_option("--burstiness", o->burstiness,
                  "Gamma shape of the arrival gaps (1 = Poisson; lower is burstier)")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", o->max_concurrency,
                  "Requests in flight at most (0 = no limit)")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Send ignore_eos: true (vLLM extra field)");
  cmd->add_option("--temperature", o->temperature, "Sampling temperature sent")
      ->capture_default_str();
  cmd->add_option("--seed", o->random.seed, "Seed for prompts and arrivals")->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Sent as Authorization: Bearer KEY");
  cmd->add_flag("--insecure", o->insecure, "https: do not verify the server's certificate");
  cmd->add_option("--timeout", o->timeout_s, "Seconds allowed per request")->capture_default_str();
  cmd->add_option("--json", o->json_path, "Also write the results as JSON to FILE ('-': stdout)");
  cmd->callback([o, exit_code] { *exit_code = bench::run_bench_serve(*o); });
}

}  // namespace

void register_bench(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  register_bench_serve(*bench, exit_code);
  auto args = std::make_shared<BenchLatencyArgs>();
  CLI::App* cmd = bench->add_subcommand("latency", "Prefill and batch-1 decode speed (CPU)");
  cmd->add_option("--model", args->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--prompt-tokens", args->prompt_tokens, "Prefill length")->capture_default_str();
  cmd->add_option("--decode-tokens", args->decode_tokens, "Decode steps")->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--kv-block-size", args->block_size, "Tokens per KV block")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--seed", args->seed, "Seed for the random token ids")->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = run_bench_latency(*args); });
}

}  // namespace autoglm::cli
