// What `autoglm generate` and `autoglm chat` share: the sampling / stopping / KV-cache flags,
// their parsing into the runtime's SamplingParams and StopParams, and a ModelSession that owns
// one Engine (include/autoglm/engine.h: model, tokenizer, CPU backend, prefix cache) and runs
// requests through its public submit/RequestStream API, like the server will.
// Numeric flags are parsed here (not by CLI11) so a bad value is one `error:` line, exit 1.
// Thread ownership: main thread (the Engine runs its own engine thread behind the API).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autoglm/engine.h"
#include "backend/backend.h"
#include "core/json_util.h"
#include "runtime/sampling_params.h"
#include "tokenizer/model_chat_template.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::cli {

struct GenerationFlags {
  std::string model_dir;
  SamplingParams sampling;  // the CLI defaults to greedy (temperature 0), see register
  StopParams stop;
  std::vector<std::string> logit_bias;  // "ID:BIAS", parsed by finalize()
  double kv_cache_mb = 256.0;
  int32_t kv_block_size = 16;
};

// Registers --model, the sampling, logprob, stop and KV flags on `cmd`, writing into `flags`
// (which must outlive parsing). Current values of `flags` are the defaults shown in --help.
void add_generation_flags(CLI::App* cmd, GenerationFlags& flags);

// Parses --logit-bias entries and checks what can be checked before the model is loaded.
void finalize_generation_flags(GenerationFlags& flags);

// One request's answer as the CLI reports it: every sampled token (a final stop token
// included) with its logprobs when asked, the streamed text, why it ended, and timings taken
// on the caller's side of the stream.
struct CliToken {
  int32_t id = 0;
  std::optional<Logprobs> logprobs;
};
struct CliGeneration {
  std::vector<CliToken> tokens;
  std::string text;  // exactly what was streamed
  FinishCause finish = FinishCause::kLength;
  std::optional<std::string> stop;  // the stop string or "token:<id>" that matched
  Usage usage;
  double prefill_ms = 0.0;  // submit to the first token
  double decode_ms = 0.0;   // first token to the last
};

// A loaded model ready to generate: an Engine over a KV pool sized from --kv-cache-mb.
class ModelSession {
 public:
  explicit ModelSession(const GenerationFlags& flags);

  std::vector<int32_t> encode_raw(std::string_view text) const;
  // Renders `messages` with the model's chat template (generation prompt appended) and
  // encodes it with control tokens special only where the template wrote them.
  std::vector<int32_t> encode_chat(const Json& messages) const;
  // Loads the chat template now (throws Error if the model has none or it is malformed).
  void require_chat_template() const;

  using TextCallback = std::function<void(std::string_view)>;
  // Submits `prompt` and reads its stream to the end, calling `on_text` with each piece as it
  // arrives. Throws Error(kInvalidArgument) when prompt + max_tokens exceeds the context or
  // the KV pool (with the counts and which flag to change), or for bad parameters; throws
  // Error(kInternal) when the engine ends the request with an error.
  CliGeneration generate(std::vector<int32_t> prompt, const SamplingParams& sampling,
                         const StopParams& stop, const TextCallback& on_text);

  const Tokenizer& tokenizer() const { return engine_->tokenizer(); }
  Engine& engine() { return *engine_; }
  KvPoolShape kv_pool() const { return pool_; }

 private:
  void check_fits(size_t prompt_tokens, int32_t max_tokens) const;

  std::unique_ptr<Engine> engine_;
  KvPoolShape pool_;
  mutable std::optional<ModelChatTemplate> chat_template_;  // loaded on first use
};

// Model output may contain NUL and any byte a token decodes to: writes by length and flushes.
void write_stdout(std::string_view text);

}  // namespace autoglm::cli
