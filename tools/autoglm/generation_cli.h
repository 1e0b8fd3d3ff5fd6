// What `autoglm generate` and `autoglm chat` share: the sampling / stopping / KV-cache flags,
// their parsing into the runtime's SamplingParams and StopParams, and a ModelSession that loads
// the model, tokenizer and CPU backend once and owns the SequenceGenerator both commands drive.
// Numeric flags are parsed here (not by CLI11) so a bad value is one `error:` line, exit 1.
// Thread ownership: main thread.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/json_util.h"
#include "model/model_dir.h"
#include "runtime/generator.h"
#include "runtime/kv_block_pool.h"
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

// A loaded model ready to generate: one sequence over a KV pool sized from --kv-cache-mb.
class ModelSession {
 public:
  explicit ModelSession(const GenerationFlags& flags);

  std::vector<int32_t> encode_raw(std::string_view text) const;
  // Renders `messages` with the model's chat template (generation prompt appended) and
  // encodes it with control tokens special only where the template wrote them.
  std::vector<int32_t> encode_chat(const Json& messages) const;
  // Loads the chat template now (throws Error if the model has none or it is malformed).
  void require_chat_template() const;

  const LoadedModel& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  SequenceGenerator& generator() { return *generator_; }
  KvPoolShape kv_pool() const { return pool_->shape(); }

 private:
  std::unique_ptr<LoadedModel> model_;
  Tokenizer tokenizer_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<KvBlockPool> pool_;
  std::unique_ptr<SequenceGenerator> generator_;
  mutable std::optional<ModelChatTemplate> chat_template_;  // loaded on first use
};

// Model output may contain NUL and any byte a token decodes to: writes by length and flushes.
void write_stdout(std::string_view text);

}  // namespace autoglm::cli
