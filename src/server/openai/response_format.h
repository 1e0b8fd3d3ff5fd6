// The OpenAI response shapes: chat.completion and text_completion objects, their streamed
// chunks (chat.completion.chunk, text_completion), the usage object and both logprob shapes
// (chat: content[{token, logprob, bytes, top_logprobs}]; completions: tokens, token_logprobs,
// top_logprobs, text_offset), and SSE framing. Pure formatting over engine results.
// Thread ownership: none (pure functions; Tokenizer is shareable). Owner: the "openai" thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autoglm/engine.h"
#include "core/json_util.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::server::openai {

inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// What every object of one response shares.
struct ResponseContext {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// prefix + 24 random hex digits.
std::string new_response_id(std::string_view prefix);
int64_t unix_now();

// One finished choice of a non-streamed response.
struct ChoiceResult {
  int32_t index = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<Logprobs> logprobs;  // one per token when logprobs were asked for
  FinishCause finish = FinishCause::kLength;
};

// Totals over all choices; a prompt shared by n choices is counted once.
struct UsageTotals {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

// "stop" or "length" (the only reasons a successful choice ends with).
std::string_view finish_reason(FinishCause cause);
Json usage_json(const UsageTotals& usage);

Json chat_logprobs_json(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                        const std::vector<Logprobs>& logprobs);
// `text_offset`: where the first token starts in the choice's text (after an echoed prompt),
// in Unicode code points as OpenAI's clients index strings; advanced past these tokens.
Json completion_logprobs_json(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                              const std::vector<Logprobs>& logprobs, int64_t& text_offset);
int64_t code_points(std::string_view text);

Json chat_completion_json(const ResponseContext& ctx, const Tokenizer& tokenizer,
                          const std::vector<ChoiceResult>& choices, const UsageTotals& usage,
                          bool with_logprobs);
// `echo_prefixes[i]`: the prompt text prepended to choice i (empty without echo).
Json text_completion_json(const ResponseContext& ctx, const Tokenizer& tokenizer,
                          const std::vector<ChoiceResult>& choices, const UsageTotals& usage,
                          bool with_logprobs, const std::vector<std::string>& echo_prefixes);

// One streamed chunk for one choice. `delta` is {"role"}, {"content"} or {} (chat);
// `text` for completions. `usage_null`: include "usage": null (stream_options.include_usage).
Json chat_chunk_json(const ResponseContext& ctx, int32_t index, Json delta, Json logprobs,
                     std::optional<FinishCause> finish, bool usage_null);
Json text_chunk_json(const ResponseContext& ctx, int32_t index, std::string text, Json logprobs,
                     std::optional<FinishCause> finish, bool usage_null);
// The last chunk when include_usage: choices [] and the totals.
Json usage_chunk_json(const ResponseContext& ctx, std::string_view object,
                      const UsageTotals& usage);

// "data: <json>\n\n" (invalid UTF-8 replaced, so it always serializes).
std::string sse_event(const Json& payload);
// A JSON body, serialized the same way.
std::string json_text(const Json& payload);

}  // namespace autoglm::server::openai
