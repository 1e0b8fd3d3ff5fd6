// `autoglm generate`: loads a model directory, encodes a prompt (optionally through the model's
// chat template), and streams a continuation to stdout through the CPU backend's paged KV cache.
// Until the engine runtime exists, this drives one sequence directly. Thread ownership: main.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "commands.h"
#include "core/error.h"
#include "model/model_dir.h"
#include "runtime/sampler.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/model_chat_template.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::cli {
namespace {

struct GenerateArgs {
  std::string model_dir;
  std::string prompt;
  std::string system;
  bool chat = false;
  bool ignore_eos = false;
  int32_t max_tokens = 64;
  int32_t block_size = 16;
  SamplingParams sampling;
};

// Encodes the prompt: through the chat template (control tokens special only where the
// template wrote them) or as raw text (special-token strings stay plain text).
std::vector<int32_t> encode_prompt(const GenerateArgs& args, const LoadedModel& model,
                                   const Tokenizer& tokenizer) {
  std::vector<uint32_t> ids;
  if (args.chat) {
    const ModelChatTemplate tmpl = load_model_chat_template(model.directory);
    Json messages = Json::array();
    if (!args.system.empty()) messages.push_back({{"role", "system"}, {"content", args.system}});
    messages.push_back({{"role", "user"}, {"content", args.prompt}});
    const RenderedPrompt rendered = tmpl.tmpl.render(
        messages, Json(), /*add_generation_prompt=*/true, Json::object(), tmpl.model_context);
    EncodeOptions chat;
    chat.special = SpecialTokenPolicy::kExceptUntrusted;
    chat.untrusted = rendered.untrusted;
    ids = tokenizer.encode(rendered.text, chat);
  } else {
    EncodeOptions raw;
    raw.add_special_tokens = true;
    ids = tokenizer.encode(args.prompt, raw);
  }
  if (ids.empty()) fail(ErrorCode::kInvalidArgument, "the prompt encodes to no tokens");
  return {ids.begin(), ids.end()};
}

// Model output may contain NUL and any other byte a token decodes to: write by length.
void write_stdout(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int run_generate(const GenerateArgs& args) {
  validate(args.sampling);
  if (args.max_tokens <= 0) fail(ErrorCode::kInvalidArgument, "--max-tokens must be > 0");
  const auto model = load_model_directory(args.model_dir);
  const Tokenizer tokenizer = Tokenizer::load(model->directory);
  const std::vector<int32_t> prompt = encode_prompt(args, *model, tokenizer);
  const int32_t total = static_cast<int32_t>(prompt.size()) + args.max_tokens;
  if (total > model->config.max_position_embeddings) {
    fail(ErrorCode::kInvalidArgument,
         "prompt (" + std::to_string(prompt.size()) + " tokens) + max_tokens (" +
             std::to_string(args.max_tokens) + ") exceeds the model context of " +
             std::to_string(model->config.max_position_embeddings));
  }
  const int32_t blocks = (total + args.block_size - 1) / args.block_size;
  CpuBackend backend(*model, KvPoolShape{blocks, args.block_size});
  std::vector<int32_t> block_table(blocks);
  for (int32_t i = 0; i < blocks; ++i) block_table[i] = i;

  Sampler sampler(args.sampling);
  IncrementalDetokenizer detok(tokenizer, /*skip_special_tokens=*/true);
  std::vector<float> logits(backend.vocab_size());
  std::vector<int32_t> step_ids = prompt;
  int32_t position = 0;
  int32_t generated = 0;
  const char* finish_reason = "length";
  const auto start = std::chrono::steady_clock::now();
  while (generated < args.max_tokens) {
    std::vector<int32_t> positions(step_ids.size()), slots(step_ids.size());
    for (size_t i = 0; i < step_ids.size(); ++i) positions[i] = slots[i] = position + i;
    const int32_t n = static_cast<int32_t>(step_ids.size());
    const std::vector<int32_t> seq_start{0, n}, context{position + n}, rows{n - 1};
    ForwardBatch batch{step_ids, positions, seq_start, context, block_table, blocks, slots, rows};
    backend.forward(batch, logits);
    position += n;
    const int32_t next = sampler.sample(logits);
    ++generated;
    const auto& eos = model->config.eos_token_ids;
    if (!args.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
      finish_reason = "stop";
      break;
    }
    write_stdout(detok.push(static_cast<uint32_t>(next)));
    step_ids.assign(1, next);
  }
  write_stdout(detok.finish());
  write_stdout("\n");
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "[%zu prompt tokens, %d generated, %.1f tok/s, finish_reason=%s]\n",
               prompt.size(), generated, generated / secs, finish_reason);
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt (CPU backend)");
  cmd->add_option("--model", args->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--prompt", args->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", args->chat, "Apply the model's chat template to the prompt");
  cmd->add_option("--system", args->system, "System message (with --chat)");
  cmd->add_option("--max-tokens", args->max_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", args->sampling.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->sampling.top_k, "0 = off")->capture_default_str();
  cmd->add_option("--top-p", args->sampling.top_p, "1 = off")->capture_default_str();
  cmd->add_option("--min-p", args->sampling.min_p, "0 = off")->capture_default_str();
  cmd->add_option("--seed", args->sampling.seed, "Sampling seed")->capture_default_str();
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Do not stop at end-of-sequence tokens");
  cmd->add_option("--kv-block-size", args->block_size, "Tokens per KV block")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->callback([args, exit_code] { *exit_code = run_generate(*args); });
}

}  // namespace autoglm::cli
