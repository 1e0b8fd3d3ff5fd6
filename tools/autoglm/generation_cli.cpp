// See generation_cli.h.
#include "generation_cli.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"

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

ModelSession::ModelSession(const GenerationFlags& flags)
    : model_(load_model_directory(flags.model_dir)),
      tokenizer_(Tokenizer::load(model_->directory)) {
  const auto budget = static_cast<uint64_t>(flags.kv_cache_mb * 1024.0 * 1024.0);
  const KvPoolShape shape = kv_pool_for_budget(model_->config, budget, flags.kv_block_size);
  backend_ = std::make_unique<CpuBackend>(*model_, shape);
  pool_ = std::make_unique<KvBlockPool>(shape);
  GeneratorOptions options;
  options.max_context = model_->config.max_position_embeddings;
  generator_ = std::make_unique<SequenceGenerator>(*backend_, *pool_, tokenizer_,
                                                   model_->config.eos_token_ids, options);
}

std::vector<int32_t> ModelSession::encode_raw(std::string_view text) const {
  EncodeOptions raw;
  raw.add_special_tokens = true;
  const std::vector<uint32_t> ids = tokenizer_.encode(text, raw);
  return {ids.begin(), ids.end()};
}

void ModelSession::require_chat_template() const {
  if (!chat_template_) chat_template_ = load_model_chat_template(model_->directory);
}

std::vector<int32_t> ModelSession::encode_chat(const Json& messages) const {
  require_chat_template();
  const RenderedPrompt rendered =
      chat_template_->tmpl.render(messages, Json(), /*add_generation_prompt=*/true, Json::object(),
                                  chat_template_->model_context);
  EncodeOptions chat;
  chat.special = SpecialTokenPolicy::kExceptUntrusted;
  chat.untrusted = rendered.untrusted;
  const std::vector<uint32_t> ids = tokenizer_.encode(rendered.text, chat);
  return {ids.begin(), ids.end()};
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace autoglm::cli
