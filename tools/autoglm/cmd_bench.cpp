// `autoglm bench latency`: prefill and batch-1 decode speed of the CPU backend on a model
// directory, with random token ids (no tokenizer involved), plus peak RSS. A measuring tool,
// not a test: results and the exact command lines go in docs/PERFORMANCE.md.
// Thread ownership: main thread (the backend's pool runs inside forward()).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
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

}  // namespace

void register_bench(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
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
