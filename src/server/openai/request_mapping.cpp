// See request_mapping.h. The settings both endpoints share, then each endpoint's prompt fields.
// The message list is parsed in chat_messages.cpp. Owner: the "openai" thread.
#include "server/openai/request_mapping.h"

#include <limits>
#include <set>
#include <string>
#include <utility>

#include "core/error.h"
#include "server/openai/api_error.h"
#include "server/openai/chat_messages.h"
#include "server/openai/json_fields.h"

namespace autoglm::server::openai {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxModelNameBytes = 256;
constexpr size_t kMaxUserBytes = 1024;
// Request bodies nest a few levels (messages[i].content[j], tools' JSON schemas); deeper is
// hostile or broken, and rejecting it early bounds the parser's work.
constexpr int kMaxBodyDepth = 64;

int32_t token_id(const Json& value, const std::string& param, int64_t vocab_size) {
  return static_cast<int32_t>(integer_value(value, param, 0, vocab_size - 1));
}

std::vector<std::string> parse_stop(const FieldReader& body, const MappingLimits& limits) {
  const Json* stop = body.get("stop");
  if (stop == nullptr) return {};
  std::vector<std::string> out;
  const auto add = [&](const Json& value, const std::string& param) {
    if (!value.is_string()) wrong_type(param, "a string", value);
    const std::string& s = value.get_ref<const std::string&>();
    if (s.empty()) throw ApiError::invalid(param, "'" + param + "' must not be empty");
    if (s.size() > limits.max_stop_bytes) {
      throw ApiError::invalid(param, "'" + param + "' is longer than " +
                                         std::to_string(limits.max_stop_bytes) + " bytes");
    }
    out.push_back(s);
  };
  if (stop->is_string()) {
    add(*stop, "stop");
    return out;
  }
  if (!stop->is_array()) wrong_type("stop", "a string or an array of strings", *stop);
  if (stop->size() > static_cast<size_t>(limits.max_stop)) {
    throw ApiError::invalid("stop", "'stop' may hold at most " + std::to_string(limits.max_stop) +
                                        " sequences, got " + std::to_string(stop->size()));
  }
  for (size_t i = 0; i < stop->size(); ++i) add((*stop)[i], "stop[" + std::to_string(i) + "]");
  return out;
}

std::vector<int32_t> parse_stop_token_ids(const FieldReader& body, const MappingLimits& limits) {
  const Json* ids = body.get("stop_token_ids");
  if (ids == nullptr) return {};
  if (!ids->is_array()) wrong_type("stop_token_ids", "an array of token ids", *ids);
  if (ids->size() > static_cast<size_t>(limits.max_stop_token_ids)) {
    throw ApiError::invalid(
        "stop_token_ids",
        "'stop_token_ids' may hold at most " + std::to_string(limits.max_stop_token_ids) + " ids");
  }
  std::vector<int32_t> out;
  for (size_t i = 0; i < ids->size(); ++i) {
    out.push_back(
        token_id((*ids)[i], "stop_token_ids[" + std::to_string(i) + "]", limits.vocab_size));
  }
  return out;
}

// Keys are token ids written as decimal strings, as OpenAI specifies.
std::vector<std::pair<int32_t, float>> parse_logit_bias(const FieldReader& body,
                                                        const MappingLimits& limits) {
  const Json* bias = body.get("logit_bias");
  if (bias == nullptr) return {};
  if (!bias->is_object()) wrong_type("logit_bias", "an object of token id -> bias", *bias);
  if (bias->size() > static_cast<size_t>(limits.max_logit_bias)) {
    throw ApiError::invalid("logit_bias", "'logit_bias' may hold at most " +
                                              std::to_string(limits.max_logit_bias) +
                                              " entries, got " + std::to_string(bias->size()));
  }
  std::vector<std::pair<int32_t, float>> out;
  std::set<int32_t> seen;
  for (const auto& [key, value] : bias->items()) {
    const std::string param = "logit_bias[" + key + "]";
    int64_t id = -1;
    const bool digits = !key.empty() && key.size() <= 10 &&
                        key.find_first_not_of("0123456789") == std::string::npos;
    if (digits) id = std::stoll(key);
    if (id < 0 || id >= limits.vocab_size) {
      throw ApiError::invalid("logit_bias", "'logit_bias' keys must be token ids in [0, " +
                                                std::to_string(limits.vocab_size) + ")");
    }
    if (!seen.insert(static_cast<int32_t>(id)).second) {
      throw ApiError::invalid("logit_bias",
                              "'logit_bias' names token " + std::to_string(id) + " twice");
    }
    const double v = number_value(value, param, -kMaxAbsLogitBias, kMaxAbsLogitBias);
    out.emplace_back(static_cast<int32_t>(id), static_cast<float>(v));
  }
  return out;
}

void parse_sampling(const FieldReader& body, const MappingLimits& limits, SamplingParams& s) {
  if (auto v = body.number("temperature", 0.0, 2.0)) s.temperature = static_cast<float>(*v);
  if (auto v = body.number("top_p", 0.0, 1.0)) {
    // OpenAI accepts top_p = 0; the nucleus is then the single most likely token.
    if (*v == 0.0) {
      s.top_k = 1;
    } else {
      s.top_p = static_cast<float>(*v);
    }
  }
  if (auto v = body.integer("top_k", -1, kInt32Max)) {
    if (s.top_k != 1 || *v != 0) s.top_k = static_cast<int32_t>(*v);
  }
  if (auto v = body.number("min_p", 0.0, 1.0)) s.min_p = static_cast<float>(*v);
  if (auto v = body.number("repetition_penalty", 0.0, 100.0)) {
    if (*v == 0.0) {
      throw ApiError::invalid("repetition_penalty", "'repetition_penalty' must be > 0");
    }
    s.repetition_penalty = static_cast<float>(*v);
  }
  if (auto v = body.number("presence_penalty", -2.0, 2.0)) {
    s.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = body.number("frequency_penalty", -2.0, 2.0)) {
    s.frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = body.integer("seed", kInt64Min, kInt64Max)) s.seed = static_cast<uint64_t>(*v);
  s.logit_bias = parse_logit_bias(body, limits);
}

int32_t parse_max_tokens(const FieldReader& body, std::string_view key) {
  return static_cast<int32_t>(*body.integer(key, 1, kInt32Max));
}

void parse_stream(const FieldReader& body, GenerationSettings& out) {
  out.stream = body.boolean("stream").value_or(false);
  const Json* options = body.get("stream_options");
  if (options == nullptr) return;
  if (!options->is_object()) wrong_type("stream_options", "an object", *options);
  if (!out.stream) {
    throw ApiError::invalid("stream_options", "'stream_options' is only allowed with stream=true");
  }
  FieldReader reader(*options, "stream_options.");
  out.include_usage = reader.boolean("include_usage").value_or(false);
}

GenerationSettings parse_settings(const FieldReader& body, const MappingLimits& limits) {
  GenerationSettings out;
  const std::optional<std::string> model = body.string("model", kMaxModelNameBytes);
  if (!model) throw ApiError::invalid("model", "'model' is required");
  out.model = *model;
  parse_stream(body, out);
  if (auto n = body.integer("n", 1, limits.max_n)) out.n = static_cast<int32_t>(*n);
  if (body.get("max_tokens") != nullptr) out.max_tokens = parse_max_tokens(body, "max_tokens");
  if (body.get("max_completion_tokens") != nullptr) {
    out.max_tokens = parse_max_tokens(body, "max_completion_tokens");  // the newer name wins
  }
  parse_sampling(body, limits, out.sampling);
  out.stop.stop_strings = parse_stop(body, limits);
  out.stop.stop_token_ids = parse_stop_token_ids(body, limits);
  out.stop.ignore_eos = body.boolean("ignore_eos").value_or(false);
  if (body.boolean("skip_special_tokens") == false) {
    throw ApiError::invalid("skip_special_tokens",
                            "'skip_special_tokens' = false is not supported: special tokens are "
                            "always left out of the generated text");
  }
  out.user = body.string("user", kMaxUserBytes).value_or("");
  return out;
}

// Both endpoints accept the same range; it is the engine's cap.
int32_t parse_top_logprobs(const FieldReader& body, std::string_view key) {
  return static_cast<int32_t>(body.integer(key, 0, kMaxTopLogprobs).value_or(0));
}

PromptInput token_prompt(const Json& ids, const std::string& param, int64_t vocab_size) {
  if (ids.empty()) throw ApiError::invalid(param, "'" + param + "' must not be empty");
  PromptInput p;
  p.is_token_ids = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    p.token_ids.push_back(token_id(ids[i], param + "[" + std::to_string(i) + "]", vocab_size));
  }
  return p;
}

std::vector<PromptInput> parse_prompts(const FieldReader& body, const MappingLimits& limits) {
  const Json* prompt = body.get("prompt");
  if (prompt == nullptr) throw ApiError::invalid("prompt", "'prompt' is required");
  const auto text_prompt = [](const Json& v, const std::string& param) {
    if (v.get_ref<const std::string&>().empty()) {
      throw ApiError::invalid(param, "'" + param + "' must not be empty");
    }
    return PromptInput{v.get<std::string>(), {}, false};
  };
  if (prompt->is_string()) return {text_prompt(*prompt, "prompt")};
  const char* expected = "a string, an array of strings, or an array of token id arrays";
  if (!prompt->is_array()) wrong_type("prompt", expected, *prompt);
  if (prompt->empty()) throw ApiError::invalid("prompt", "'prompt' must not be empty");
  if ((*prompt)[0].is_number()) return {token_prompt(*prompt, "prompt", limits.vocab_size)};
  if (prompt->size() > static_cast<size_t>(limits.max_prompts)) {
    throw ApiError::invalid(
        "prompt", "'prompt' may hold at most " + std::to_string(limits.max_prompts) + " prompts");
  }
  std::vector<PromptInput> out;
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& item = (*prompt)[i];
    const std::string param = "prompt[" + std::to_string(i) + "]";
    if (item.is_string()) {
      out.push_back(text_prompt(item, param));
    } else if (item.is_array()) {
      out.push_back(token_prompt(item, param, limits.vocab_size));
    } else {
      wrong_type(param, "a string or an array of token ids", item);
    }
  }
  return out;
}

void check_prompt_bytes(const std::vector<PromptInput>& prompts, const MappingLimits& limits) {
  size_t bytes = 0;
  for (const PromptInput& p : prompts) bytes += p.text.size() + 4 * p.token_ids.size();
  if (bytes > limits.max_prompt_bytes) throw_prompt_too_large("prompt", bytes, limits);
}

}  // namespace

void throw_prompt_too_large(const std::string& param, size_t bytes, const MappingLimits& limits) {
  throw ApiError(413,
                 "the prompt is " + std::to_string(bytes) + " bytes; the limit is " +
                     std::to_string(limits.max_prompt_bytes),
                 "invalid_request_error", param, "prompt_too_large");
}

Json parse_request_object(std::string_view body) {
  Json doc;
  try {
    doc = parse_json_limited(body, "request body", kMaxBodyDepth, ErrorCode::kInvalidArgument);
  } catch (const Error& e) {
    throw ApiError::invalid("", std::string("invalid JSON: ") + e.what());
  }
  if (!doc.is_object()) {
    throw ApiError::invalid("",
                            "the request body must be a JSON object, got " + json_type_name(doc));
  }
  return doc;
}

ChatCompletionRequest parse_chat_completion_request(std::string_view text,
                                                    const MappingLimits& limits) {
  const Json doc = parse_request_object(text);
  const FieldReader body(doc);
  ChatCompletionRequest out;
  out.settings = parse_settings(body, limits);
  out.settings.sampling.logprobs = body.boolean("logprobs").value_or(false);
  out.settings.sampling.top_logprobs = parse_top_logprobs(body, "top_logprobs");
  if (out.settings.sampling.top_logprobs > 0 && !out.settings.sampling.logprobs) {
    throw ApiError::invalid("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
  }
  ParsedMessages messages = parse_chat_messages(body, limits);
  out.messages = std::move(messages.messages);
  out.tools = parse_chat_tools(body);
  out.add_generation_prompt = body.boolean("add_generation_prompt").value_or(true);
  out.template_kwargs = parse_template_kwargs(body);
  return out;
}

CompletionRequest parse_completion_request(std::string_view text, const MappingLimits& limits) {
  const Json doc = parse_request_object(text);
  const FieldReader body(doc);
  CompletionRequest out;
  out.settings = parse_settings(body, limits);
  out.prompts = parse_prompts(body, limits);
  check_prompt_bytes(out.prompts, limits);
  const int64_t choices = static_cast<int64_t>(out.prompts.size()) * out.settings.n;
  if (choices > limits.max_choices) {
    throw ApiError::invalid("n", "n (" + std::to_string(out.settings.n) + ") times " +
                                     std::to_string(out.prompts.size()) +
                                     " prompts exceeds the limit of " +
                                     std::to_string(limits.max_choices) + " choices");
  }
  if (body.get("logprobs") != nullptr) {
    out.logprobs = parse_top_logprobs(body, "logprobs");
    out.settings.sampling.logprobs = true;
    out.settings.sampling.top_logprobs = *out.logprobs;
  }
  out.echo = body.boolean("echo").value_or(false);
  if (out.echo && out.logprobs) {
    throw ApiError::invalid("echo",
                            "'echo' together with 'logprobs' is not supported (prompt "
                            "logprobs are not computed)");
  }
  if (const Json* suffix = body.get("suffix");
      suffix != nullptr &&
      !(suffix->is_string() && suffix->get_ref<const std::string&>().empty())) {
    throw ApiError::invalid("suffix", "'suffix' is not supported");
  }
  return out;
}

}  // namespace autoglm::server::openai
