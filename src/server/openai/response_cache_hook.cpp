// See response_cache_hook.h. Owner: the "cache" thread (a seam in "openai" code).
#include "server/openai/response_cache_hook.h"

#include <string>
#include <utility>

#include "server/cache/response_cache.h"
#include "server/openai/response_format.h"

namespace autoglm::server::openai {
namespace {

std::string request_tenant(const HttpRequest& request) {
  if (!request.principal) return "";
  return request.principal->tenant.empty() ? request.principal->id : request.principal->tenant;
}

ChoiceResult choice_from(const cache::CachedAnswer& answer, const ChoiceJob& job) {
  ChoiceResult result;
  result.index = job.index;
  result.text = answer.text;
  result.token_ids = answer.token_ids;
  result.logprobs = answer.logprobs;
  result.finish = answer.finish;
  return result;
}

// The stream a live generation would have sent, in one content chunk.
void replay_stream(Responder& responder, const SessionOptions& options, const Tokenizer& tokenizer,
                   const ChoiceResult& result, const ChoiceJob& job, const UsageTotals& totals,
                   const std::string& cache_header) {
  const ResponseContext& ctx = options.context;
  const bool chat = options.endpoint == Endpoint::kChat;
  const bool usage_null = options.include_usage;
  const bool logprobs = options.with_logprobs && !result.logprobs.empty();
  responder.start_stream(200, {{"x-autoglm-cache", cache_header}});
  if (chat) {
    responder.send_event(sse_event(chat_chunk_json(
        ctx, result.index, Json{{"role", "assistant"}, {"content", ""}}, nullptr, {}, usage_null)));
    if (!result.text.empty() || logprobs) {
      Json lp = logprobs ? chat_logprobs_json(tokenizer, result.token_ids, result.logprobs)
                         : Json(nullptr);
      responder.send_event(sse_event(chat_chunk_json(
          ctx, result.index, Json{{"content", result.text}}, std::move(lp), {}, usage_null)));
    }
    responder.send_event(sse_event(
        chat_chunk_json(ctx, result.index, Json::object(), nullptr, result.finish, usage_null)));
  } else {
    if (!job.echo_prefix.empty()) {
      responder.send_event(
          sse_event(text_chunk_json(ctx, result.index, job.echo_prefix, nullptr, {}, usage_null)));
    }
    if (!result.text.empty() || logprobs) {
      int64_t offset = code_points(job.echo_prefix);
      Json lp = logprobs
                    ? completion_logprobs_json(tokenizer, result.token_ids, result.logprobs, offset)
                    : Json(nullptr);
      responder.send_event(sse_event(
          text_chunk_json(ctx, result.index, result.text, std::move(lp), {}, usage_null)));
    }
    responder.send_event(
        sse_event(text_chunk_json(ctx, result.index, "", nullptr, result.finish, usage_null)));
  }
  if (options.include_usage) {
    responder.send_event(sse_event(
        usage_chunk_json(ctx, chat ? "chat.completion.chunk" : "text_completion", totals)));
  }
  responder.send_event(std::string(kDoneEvent));
  responder.end_stream();
}

void answer_hit(Responder& responder, const SessionOptions& options, const Tokenizer& tokenizer,
                const cache::CacheHit& hit, const ChoiceJob& job) {
  const std::string cache_header = "hit-" + std::string(cache::cache_level_name(hit.level));
  ChoiceResult result = choice_from(hit.answer, job);
  UsageTotals totals;
  totals.prompt_tokens = job.prompt_tokens;
  totals.completion_tokens = hit.answer.completion_tokens;
  totals.cached_tokens = job.prompt_tokens;  // no prefill ran: the whole prompt was cached
  responder.annotate("model", options.context.model);
  responder.annotate("cache", cache_header);
  responder.annotate("prompt_tokens", totals.prompt_tokens);
  responder.annotate("completion_tokens", totals.completion_tokens);
  responder.annotate("cached_tokens", totals.cached_tokens);
  responder.annotate("finish_reason", std::string(finish_reason(result.finish)));
  if (options.on_usage) options.on_usage(totals);  // quotas count served tokens, cached or not
  if (options.stream) {
    replay_stream(responder, options, tokenizer, result, job, totals, cache_header);
    return;
  }
  const bool chat = options.endpoint == Endpoint::kChat;
  HttpResponse response;
  response.headers.emplace_back("x-autoglm-cache", cache_header);
  response.body =
      json_text(chat ? chat_completion_json(options.context, tokenizer, {result}, totals,
                                            options.with_logprobs)
                     : text_completion_json(options.context, tokenizer, {result}, totals,
                                            options.with_logprobs, {job.echo_prefix}));
  responder.respond(std::move(response));
}

}  // namespace

bool answer_from_cache(const ServedModel& model, const HttpRequest& request,
                       const std::shared_ptr<Responder>& responder, SessionOptions& options,
                       const std::vector<ChoiceJob>& jobs) {
  cache::ResponseCache* response_cache = model.response_cache;
  if (response_cache == nullptr || jobs.size() != 1 || !cache::is_cacheable(jobs[0].request)) {
    return false;
  }
  const cache::CacheKey key = response_cache->key_for(request_tenant(request), jobs[0].request);
  if (std::optional<cache::CacheHit> hit = response_cache->lookup(key)) {
    answer_hit(*responder, options, model.engine->tokenizer(), *hit, jobs[0]);
    return true;
  }
  responder->annotate("cache", std::string("miss"));
  options.on_result = [response_cache, key](const ChoiceResult& result, const UsageTotals& totals) {
    cache::CachedAnswer answer;
    answer.text = result.text;
    answer.token_ids = result.token_ids;
    answer.logprobs = result.logprobs;
    answer.finish = result.finish;
    answer.prompt_tokens = static_cast<int32_t>(totals.prompt_tokens);
    answer.completion_tokens = static_cast<int32_t>(totals.completion_tokens);
    response_cache->store(key, answer);
  };
  return false;
}

}  // namespace autoglm::server::openai
