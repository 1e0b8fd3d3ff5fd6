// Maps an OpenAI request body (POST /v1/chat/completions, /v1/completions) to a parsed request:
// the engine's SamplingParams/StopParams plus the prompt pieces and the response options. Pure
// functions over the body and a small MappingLimits struct (no engine, no tokenizer), so the
// mapping is unit-tested and fuzzed on its own. Every invalid value throws ApiError 400 naming
// the parameter (its JSON path, e.g. "messages[2].content") and, for a wrong JSON type, the
// type expected and the type sent. Unknown fields are ignored (OpenAI SDKs merge extra_body into
// the top level); vLLM's extension names are accepted (top_k, min_p, repetition_penalty,
// ignore_eos, stop_token_ids, skip_special_tokens, add_generation_prompt, chat_template_kwargs).
// Thread ownership: none (pure functions). Owner: the "openai" thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_util.h"
#include "runtime/sampling_params.h"

namespace autoglm::server::openai {

// Documented caps (src/server/openai/README.md); OpenAI's own where it has one.
struct MappingLimits {
  int64_t vocab_size = 0;        // bounds logit_bias keys, stop_token_ids and prompt ids
  int32_t max_n = 16;            // choices per request (n)
  int32_t max_choices = 64;      // n * number of prompts (completions)
  int32_t max_stop = 4;          // stop strings, as OpenAI
  size_t max_stop_bytes = 1024;  // each stop string
  int32_t max_stop_token_ids = 64;
  int32_t max_logit_bias = 1024;       // entries
  size_t max_prompt_bytes = 8u << 20;  // all prompt text of one request; beyond: 413
  int32_t max_messages = 4096;
  int32_t max_prompts = 64;  // completions: prompts in one request
};

// Fields common to both endpoints.
struct GenerationSettings {
  std::string model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int32_t n = 1;
  std::optional<int32_t> max_tokens;  // max_completion_tokens, else max_tokens; unset: default
  SamplingParams sampling;            // temperature 1, etc.; seed and logprobs included
  StopParams stop;                    // max_tokens filled in by the handler
  std::string user;
};

struct ChatCompletionRequest {
  GenerationSettings settings;
  Json messages;  // array of {role, content: string | null, ...}: text parts already joined
  Json tools;     // array, or null when absent
  bool add_generation_prompt = true;
  Json template_kwargs = Json::object();  // chat_template_kwargs (untrusted: enable_thinking...)
};

struct PromptInput {
  std::string text;  // when !is_token_ids
  std::vector<int32_t> token_ids;
  bool is_token_ids = false;
};

struct CompletionRequest {
  GenerationSettings settings;
  std::vector<PromptInput> prompts;  // one or more; choices are prompt-major (p * n + i)
  bool echo = false;
  std::optional<int32_t> logprobs;  // completions' integer logprobs (top alternatives)
};

ChatCompletionRequest parse_chat_completion_request(std::string_view body,
                                                    const MappingLimits& limits);
CompletionRequest parse_completion_request(std::string_view body, const MappingLimits& limits);

// Throws ApiError 413 (code "prompt_too_large") for prompt text over limits.max_prompt_bytes.
[[noreturn]] void throw_prompt_too_large(const std::string& param, size_t bytes,
                                         const MappingLimits& limits);

// The body as a JSON object (depth-capped, duplicate keys rejected), else ApiError 400.
Json parse_request_object(std::string_view body);

}  // namespace autoglm::server::openai
