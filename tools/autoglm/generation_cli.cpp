// See generation_cli.h.
#include "generation_cli.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "runtime/kv_block_pool.h"

namespace autoglm::cli {
namespace {

[[noreturn]] void bad_value(const std::string& flag, const std::string& value,
                            const std::string& expected) {
  fail(ErrorCode::kInvalidArgument, flag + ": '" + value + "' is not " + expected);
}

// Whole-string conversions: trailing garbage, empty strings and overflow are errors. NaN and
// infinities parse, so validate() can reject them with the parameter's name and range.
double parse_double(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE) {
    bad_value(flag, text, "a number");
  }
  return value;
}

template <typename Int>
Int parse_int(const std::string& flag, const std::string& text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    bad_value(flag, text, "an integer in range");
  }
  return value;
}

void float_flag(CLI::App* cmd, const std::string& flag, float& target, const std::string& help) {
  cmd->add_option_function<std::string>(
         flag,
         [&target, flag](const std::string& s) {
           target = static_cast<float>(parse_double(flag, s));
         },
         help + " (default " + std::to_string(target) + ")")
      ->type_name("NUM");
}

template <typename Int>
void int_flag(CLI::App* cmd, const std::string& flag, Int& target, const std::string& help) {
  cmd->add_option_function<std::string>(
         flag, [&target, flag](const std::string& s) { target = parse_int<Int>(flag, s); },
         help + " (default " + std::to_string(target) + ")")
      ->type_name("INT");
}

std::pair<int32_t, float> parse_logit_bias(const std::string& entry) {
  const size_t colon = entry.find(':');
  if (colon == std::string::npos) bad_value("--logit-bias", entry, "of the form ID:BIAS");
  const auto id = parse_int<int32_t>("--logit-bias", entry.substr(0, colon));
  const double bias = parse_double("--logit-bias", entry.substr(colon + 1));
  return {id, static_cast<float>(bias)};
}

}  // namespace

void add_generation_flags(CLI::App* cmd, GenerationFlags& f) {
  cmd->add_option("--model", f.model_dir, "Hugging Face model directory")->required();
  SamplingParams& s = f.sampling;
  float_flag(cmd, "--temperature", s.temperature, "0 = greedy; [0, 100]");
  int_flag(cmd, "--top-k", s.top_k, "keep the k most likely; 0 or -1 = off");
  float_flag(cmd, "--top-p", s.top_p, "nucleus mass in (0, 1]; 1 = off");
  float_flag(cmd, "--min-p", s.min_p, "drop tokens below min_p * p(top); [0, 1]");
  float_flag(cmd, "--repetition-penalty", s.repetition_penalty, "HF semantics, > 0; 1 = off");
  float_flag(cmd, "--presence-penalty", s.presence_penalty, "OpenAI semantics, [-2, 2]");
  float_flag(cmd, "--frequency-penalty", s.frequency_penalty, "OpenAI semantics, [-2, 2]");
  cmd->add_option("--logit-bias", f.logit_bias, "ID:BIAS with BIAS in [-100, 100] (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option_function<std::string>(
      "--seed", [&s](const std::string& v) { s.seed = parse_int<uint64_t>("--seed", v); },
      "seed for reproducible sampling (default: random)");
  cmd->add_flag("--logprobs", s.logprobs, "report each token's logprob (with --json)");
  cmd->add_option_function<std::string>(
      "--top-logprobs",
      [&s](const std::string& v) {
        s.top_logprobs = parse_int<int32_t>("--top-logprobs", v);
        s.logprobs = true;
      },
      "also report the N most likely alternatives, 0..20 (implies --logprobs)");
  StopParams& st = f.stop;
  int_flag(cmd, "--max-tokens", st.max_tokens, "tokens to generate");
  cmd->add_flag("--ignore-eos", st.ignore_eos, "do not stop at end-of-sequence tokens");
  cmd->add_option("--stop", st.stop_strings, "stop string, not emitted (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option_function<std::vector<std::string>>(
         "--stop-token-id",
         [&st](const std::vector<std::string>& values) {
           for (const std::string& v : values) {
             st.stop_token_ids.push_back(parse_int<int32_t>("--stop-token-id", v));
           }
         },
         "stop token id (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option_function<std::string>(
      "--kv-cache-mb",
      [&f](const std::string& v) { f.kv_cache_mb = parse_double("--kv-cache-mb", v); },
      "KV cache budget in MiB (default " + std::to_string(static_cast<int>(f.kv_cache_mb)) + ")");
  int_flag(cmd, "--kv-block-size", f.kv_block_size, "tokens per KV block");
}

void finalize_generation_flags(GenerationFlags& f) {
  for (const std::string& entry : f.logit_bias)
    f.sampling.logit_bias.push_back(parse_logit_bias(entry));
  if (!std::isfinite(f.kv_cache_mb) || f.kv_cache_mb <= 0 || f.kv_cache_mb > 1024.0 * 1024.0) {
    fail(ErrorCode::kInvalidArgument, "--kv-cache-mb must be in (0, 1048576]");
  }
  if (f.kv_block_size < 1 || f.kv_block_size > 1024) {
    fail(ErrorCode::kInvalidArgument, "--kv-block-size must be in [1, 1024]");
  }
  // Everything but the vocabulary bound, before spending time on loading the model.
  const int64_t any_vocab = std::numeric_limits<int32_t>::max();
  validate(f.sampling, any_vocab);
  validate(f.stop, any_vocab);
}

namespace {

EngineOptions engine_options(const GenerationFlags& flags) {
  EngineOptions options;
  options.model_path = flags.model_dir;
  options.device = "cpu";
  options.kv_cache_bytes = static_cast<uint64_t>(flags.kv_cache_mb * 1024.0 * 1024.0);
  options.kv_block_size = flags.kv_block_size;
  return options;
}

double milliseconds_between(std::chrono::steady_clock::time_point from,
                            std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The engine's typed rejection, as the one-line CLI error main() prints.
RequestStream submit_or_fail(Engine& engine, GenerationRequest request) {
  try {
    return engine.submit(std::move(request));
  } catch (const RequestRejected& e) {
    const bool too_long = e.reason() == RequestRejected::Reason::kTooLong;
    fail(too_long ? ErrorCode::kInvalidArgument : ErrorCode::kResourceExhausted, e.what());
  }
}

void append_tokens(StreamDelta& delta, CliGeneration& out) {
  for (size_t i = 0; i < delta.token_ids.size(); ++i) {
    CliToken token{delta.token_ids[i], std::nullopt};
    if (i < delta.logprobs.size()) token.logprobs = std::move(delta.logprobs[i]);
    out.tokens.push_back(std::move(token));
  }
}

}  // namespace

ModelSession::ModelSession(const GenerationFlags& flags)
    : engine_(std::make_unique<Engine>(engine_options(flags))) {
  // The same sizing the engine applied to its options, for the CLI's own fit check.
  pool_ = kv_pool_for_budget(engine_->model_config(), engine_->options().kv_cache_bytes,
                             flags.kv_block_size);
}

void ModelSession::check_fits(size_t prompt_tokens, int32_t max_tokens) const {
  // The engine rejects these too; checked here first to name the flag that fixes it.
  const int64_t total = static_cast<int64_t>(prompt_tokens) + max_tokens;
  const std::string what = "prompt (" + std::to_string(prompt_tokens) + " tokens) + max_tokens (" +
                           std::to_string(max_tokens) + ")";
  const int64_t max_context = engine_->model_config().max_position_embeddings;
  if (max_context > 0 && total > max_context) {
    fail(ErrorCode::kInvalidArgument,
         what + " exceeds the model context of " + std::to_string(max_context) + " tokens");
  }
  const int64_t pool_tokens = static_cast<int64_t>(pool_.num_blocks) * pool_.block_size;
  if (total > pool_tokens) {
    const int64_t blocks = (total + pool_.block_size - 1) / pool_.block_size;
    fail(ErrorCode::kInvalidArgument,
         what + " needs " + std::to_string(blocks) + " KV blocks of " +
             std::to_string(pool_.block_size) + " tokens, but the KV cache holds " +
             std::to_string(pool_.num_blocks) + " blocks (" + std::to_string(pool_tokens) +
             " tokens); raise --kv-cache-mb or lower max_tokens");
  }
}

CliGeneration ModelSession::generate(std::vector<int32_t> prompt, const SamplingParams& sampling,
                                     const StopParams& stop, const TextCallback& on_text) {
  check_fits(prompt.size(), stop.max_tokens);
  GenerationRequest request;
  request.prompt_ids = std::move(prompt);
  request.sampling = sampling;
  request.stop = stop;
  const auto submitted = std::chrono::steady_clock::now();
  RequestStream stream = submit_or_fail(*engine_, std::move(request));
  CliGeneration out;
  std::optional<std::chrono::steady_clock::time_point> first_token, last_token;
  std::string error;
  while (std::optional<StreamDelta> delta = stream.next()) {
    const auto now = std::chrono::steady_clock::now();
    if (!delta->token_ids.empty()) {
      if (!first_token) first_token = now;
      last_token = now;
    }
    append_tokens(*delta, out);
    if (!delta->text.empty()) {
      on_text(delta->text);
      out.text += delta->text;
    }
    if (delta->finish) {
      out.finish = *delta->finish;
      out.stop = std::move(delta->stop);
      out.usage = delta->usage;
      error = std::move(delta->error);
    }
  }
  if (out.finish == FinishCause::kError) fail(ErrorCode::kInternal, "generation failed: " + error);
  if (first_token) {
    out.prefill_ms = milliseconds_between(submitted, *first_token);
    out.decode_ms = milliseconds_between(*first_token, *last_token);
  }
  return out;
}

std::vector<int32_t> ModelSession::encode_raw(std::string_view text) const {
  return engine_->encode(text);  // with the special tokens the tokenizer adds (BOS etc.)
}

void ModelSession::require_chat_template() const {
  if (!chat_template_) chat_template_ = load_model_chat_template(engine_->options().model_path);
}

std::vector<int32_t> ModelSession::encode_chat(const Json& messages) const {
  require_chat_template();
  return encode_chat_prompt(*chat_template_, tokenizer(), messages, Json(),
                            /*add_generation_prompt=*/true, Json::object());
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace autoglm::cli
