// See response_format.h. Owner: the "openai" thread.
#include "server/openai/response_format.h"

#include <chrono>
#include <cmath>
#include <mutex>
#include <random>

namespace autoglm::server::openai {
namespace {

// OpenAI prints -inf logprobs as -9999.0; JSON has no infinity.
double finite_logprob(float logprob) {
  return std::isfinite(logprob) ? static_cast<double>(logprob) : -9999.0;
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  const uint32_t one[] = {static_cast<uint32_t>(id)};
  return tokenizer.decode(one);
}

Json token_bytes(const Tokenizer& tokenizer, int32_t id) {
  Json bytes = Json::array();
  const std::optional<std::string_view> raw = tokenizer.decoder_bytes(static_cast<uint32_t>(id));
  if (raw) {
    for (const char c : *raw) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  }
  return bytes;
}

Json chat_token_entry(const Tokenizer& tokenizer, const TokenLogprob& t) {
  return Json{{"token", token_text(tokenizer, t.id)},
              {"logprob", finite_logprob(t.logprob)},
              {"bytes", token_bytes(tokenizer, t.id)}};
}

Json chunk_base(const ResponseContext& ctx, std::string_view object, bool usage_null) {
  Json chunk{{"id", ctx.id}, {"object", object}, {"created", ctx.created}, {"model", ctx.model}};
  if (usage_null) chunk["usage"] = nullptr;
  return chunk;
}

}  // namespace

std::string new_response_id(std::string_view prefix) {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = 0, b = 0;
  {
    std::lock_guard<std::mutex> lock(mutex);
    a = rng();
    b = rng();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 16; ++i) id += kHex[(a >> (4 * i)) & 0xF];
  for (int i = 0; i < 8; ++i) id += kHex[(b >> (4 * i)) & 0xF];
  return id;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t code_points(std::string_view text) {
  int64_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

std::string_view finish_reason(FinishCause cause) {
  return cause == FinishCause::kStop ? "stop" : "length";
}

Json usage_json(const UsageTotals& usage) {
  return Json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", Json{{"cached_tokens", usage.cached_tokens}}}};
}

Json chat_logprobs_json(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                        const std::vector<Logprobs>& logprobs) {
  Json content = Json::array();
  for (size_t i = 0; i < ids.size() && i < logprobs.size(); ++i) {
    Json entry = chat_token_entry(tokenizer, TokenLogprob{ids[i], logprobs[i].chosen.logprob});
    Json top = Json::array();
    for (const TokenLogprob& t : logprobs[i].top) top.push_back(chat_token_entry(tokenizer, t));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return Json{{"content", std::move(content)}};
}

Json completion_logprobs_json(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                              const std::vector<Logprobs>& logprobs, int64_t& text_offset) {
  Json tokens = Json::array(), token_logprobs = Json::array(), top = Json::array(),
       offsets = Json::array();
  for (size_t i = 0; i < ids.size() && i < logprobs.size(); ++i) {
    const std::string text = token_text(tokenizer, ids[i]);
    tokens.push_back(text);
    token_logprobs.push_back(finite_logprob(logprobs[i].chosen.logprob));
    Json alternatives = Json::object();
    for (const TokenLogprob& t : logprobs[i].top) {
      // Two ids may decode to the same text; the first (most likely) keeps the entry.
      const std::string alt = token_text(tokenizer, t.id);
      if (!alternatives.contains(alt)) alternatives[alt] = finite_logprob(t.logprob);
    }
    top.push_back(std::move(alternatives));
    offsets.push_back(text_offset);
    text_offset += code_points(text);
  }
  return Json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(token_logprobs)},
              {"top_logprobs", std::move(top)},
              {"text_offset", std::move(offsets)}};
}

Json chat_completion_json(const ResponseContext& ctx, const Tokenizer& tokenizer,
                          const std::vector<ChoiceResult>& choices, const UsageTotals& usage,
                          bool with_logprobs) {
  Json out_choices = Json::array();
  for (const ChoiceResult& c : choices) {
    out_choices.push_back(
        Json{{"index", c.index},
             {"message", Json{{"role", "assistant"}, {"content", c.text}}},
             {"logprobs", with_logprobs ? chat_logprobs_json(tokenizer, c.token_ids, c.logprobs)
                                        : Json(nullptr)},
             {"finish_reason", finish_reason(c.finish)}});
  }
  return Json{
      {"id", ctx.id},       {"object", "chat.completion"},       {"created", ctx.created},
      {"model", ctx.model}, {"choices", std::move(out_choices)}, {"usage", usage_json(usage)}};
}

Json text_completion_json(const ResponseContext& ctx, const Tokenizer& tokenizer,
                          const std::vector<ChoiceResult>& choices, const UsageTotals& usage,
                          bool with_logprobs, const std::vector<std::string>& echo_prefixes) {
  Json out_choices = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    const std::string prefix = i < echo_prefixes.size() ? echo_prefixes[i] : std::string();
    int64_t offset = code_points(prefix);
    out_choices.push_back(
        Json{{"index", c.index},
             {"text", prefix + c.text},
             {"logprobs", with_logprobs
                              ? completion_logprobs_json(tokenizer, c.token_ids, c.logprobs, offset)
                              : Json(nullptr)},
             {"finish_reason", finish_reason(c.finish)}});
  }
  return Json{
      {"id", ctx.id},       {"object", "text_completion"},       {"created", ctx.created},
      {"model", ctx.model}, {"choices", std::move(out_choices)}, {"usage", usage_json(usage)}};
}

Json chat_chunk_json(const ResponseContext& ctx, int32_t index, Json delta, Json logprobs,
                     std::optional<FinishCause> finish, bool usage_null) {
  Json chunk = chunk_base(ctx, "chat.completion.chunk", usage_null);
  Json choice{{"index", index},
              {"delta", std::move(delta)},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", finish ? Json(finish_reason(*finish)) : Json(nullptr)}};
  chunk["choices"] = Json::array({std::move(choice)});
  return chunk;
}

Json text_chunk_json(const ResponseContext& ctx, int32_t index, std::string text, Json logprobs,
                     std::optional<FinishCause> finish, bool usage_null) {
  Json chunk = chunk_base(ctx, "text_completion", usage_null);
  Json choice{{"index", index},
              {"text", std::move(text)},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", finish ? Json(finish_reason(*finish)) : Json(nullptr)}};
  chunk["choices"] = Json::array({std::move(choice)});
  return chunk;
}

Json usage_chunk_json(const ResponseContext& ctx, std::string_view object,
                      const UsageTotals& usage) {
  Json chunk = chunk_base(ctx, object, false);
  chunk["choices"] = Json::array();
  chunk["usage"] = usage_json(usage);
  return chunk;
}

std::string json_text(const Json& payload) {
  return payload.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string sse_event(const Json& payload) {
  return "data: " + json_text(payload) + "\n\n";
}

}  // namespace autoglm::server::openai
