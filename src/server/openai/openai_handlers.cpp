// See openai_handlers.h. Each handler: readiness (503), body mapping (400/413), model name
// (404), prompt encoding, context checks (413/400), then the generation session.
// Owner: the "openai" thread.
#include "server/openai/openai_handlers.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "server/openai/api_error.h"
#include "server/openai/chat_messages.h"
#include "server/openai/chat_prompt.h"
#include "server/openai/engine_errors.h"
#include "server/openai/generation_session.h"
#include "server/openai/json_fields.h"
#include "server/openai/request_mapping.h"
#include "server/openai/response_cache_hook.h"
#include "server/openai/response_format.h"
#include "server/quota_gate.h"

namespace autoglm::server::openai {
namespace {

// OpenAI's default for /v1/completions; chat defaults to the rest of the context.
constexpr int64_t kDefaultCompletionMaxTokens = 16;
constexpr size_t kMaxDetokenizeIds = 1u << 20;

// Runs `body`; any exception becomes the matching error response (500 without detail for
// anything unexpected). The Responder ignores a second answer, so a session that already
// answered is safe.
template <typename Body>
void answer_errors(Responder& responder, Body&& body) {
  try {
    body();
  } catch (const ApiError& e) {
    responder.respond(error_response(e));
  } catch (const std::exception& e) {
    responder.respond(error_response(api_error_from_exception(e, "")));
  } catch (...) {
    responder.respond(error_response(internal_error()));
  }
}

void check_ready(const ServedModel& model) {
  if (model.ready != nullptr && !model.ready->load()) throw not_ready_error();
}

void check_model(const ServedModel& model, const std::string& name) {
  if (name != model.name) throw model_not_found(name);
}

// Auth (server/auth_middleware.h): the caller's credential must allow this model (403).
void check_model_allowed(const HttpRequest& request, const std::string& name) {
  if (request.principal && !request.principal->may_use_model(name)) {
    throw ApiError(403, "this credential may not use model '" + name + "'", "permission_error",
                   std::string("model"), std::string("model_not_allowed"));
  }
}

HttpResponse json_response(const Json& body) {
  HttpResponse response;
  response.body = json_text(body);
  return response;
}

// The output budget of one prompt: the request's max_tokens, or the default, within the
// context. A prompt that alone fills the context is 413; prompt + max_tokens over it is 400.
int32_t resolve_max_tokens(const ServedModel& model, const GenerationSettings& settings,
                           int64_t prompt_tokens, Endpoint endpoint, const std::string& param) {
  const int64_t limit = model.max_model_len;
  if (prompt_tokens >= limit) {
    throw ApiError(413,
                   "the prompt is " + std::to_string(prompt_tokens) +
                       " tokens; the model's context is " + std::to_string(limit) +
                       " tokens, which leaves no room for output",
                   "invalid_request_error", param, "context_length_exceeded");
  }
  const int64_t room = limit - prompt_tokens;
  int64_t max_tokens = 0;
  if (!settings.max_tokens) {
    max_tokens = endpoint == Endpoint::kChat ? room : std::min(kDefaultCompletionMaxTokens, room);
  } else if (prompt_tokens + *settings.max_tokens > limit) {
    throw ApiError(400,
                   "prompt (" + std::to_string(prompt_tokens) + " tokens) + max_tokens (" +
                       std::to_string(*settings.max_tokens) + ") exceeds the context of " +
                       std::to_string(limit) + " tokens",
                   "invalid_request_error", "max_tokens", "context_length_exceeded");
  } else {
    max_tokens = *settings.max_tokens;
  }
  return static_cast<int32_t>(std::min<int64_t>(max_tokens, std::numeric_limits<int32_t>::max()));
}

struct EncodedPrompt {
  std::vector<int32_t> ids;
  std::string echo;  // the prompt text, for echo
};

// One job per choice: prompt-major indices, seeds seed, seed+1, ... across a prompt's choices.
std::vector<ChoiceJob> make_jobs(const ServedModel& model, const GenerationSettings& settings,
                                 const std::vector<EncodedPrompt>& prompts, Endpoint endpoint,
                                 const std::string& prompt_param) {
  try {
    validate(settings.sampling, model.limits.vocab_size);
    validate(settings.stop, model.limits.vocab_size);
  } catch (const Error& e) {
    throw ApiError::invalid("", e.what());
  }
  std::vector<ChoiceJob> jobs;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto prompt_tokens = static_cast<int64_t>(prompts[p].ids.size());
    const int32_t max_tokens =
        resolve_max_tokens(model, settings, prompt_tokens, endpoint, prompt_param);
    for (int32_t i = 0; i < settings.n; ++i) {
      ChoiceJob job;
      job.index = static_cast<int32_t>(p) * settings.n + i;
      job.prompt_group = static_cast<int32_t>(p);
      job.prompt_tokens = static_cast<int32_t>(prompt_tokens);
      job.echo_prefix = prompts[p].echo;
      job.request.prompt_ids = prompts[p].ids;
      job.request.sampling = settings.sampling;
      if (settings.sampling.seed) job.request.sampling.seed = *settings.sampling.seed + i;
      job.request.stop = settings.stop;
      job.request.stop.max_tokens = max_tokens;
      job.request.timeout = model.request_timeout;
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

SessionOptions session_options(Endpoint endpoint, const GenerationSettings& settings,
                               const QuotaTicket& quota) {
  SessionOptions options;
  if (quota.charge) {
    options.on_usage = [charge = quota.charge](const UsageTotals& used) {
      charge(used.prompt_tokens + used.completion_tokens);
    };
  }
  options.endpoint = endpoint;
  options.context.id = new_response_id(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
  options.context.created = unix_now();
  options.context.model = settings.model;
  options.stream = settings.stream;
  options.include_usage = settings.include_usage;
  options.with_logprobs = settings.sampling.logprobs;
  return options;
}

std::vector<int32_t> encode_plain(const ServedModel& model, const std::string& text,
                                  const std::string& param, bool add_special_tokens) {
  EncodeOptions options;  // special-token text in a client's prompt stays plain text
  options.add_special_tokens = add_special_tokens;
  try {
    const std::vector<uint32_t> ids = model.engine->tokenizer().encode(text, options);
    return {ids.begin(), ids.end()};
  } catch (const std::exception& e) {
    throw api_error_from_exception(e, param);
  }
}

std::vector<EncodedPrompt> encode_prompts(const ServedModel& model,
                                          const std::vector<PromptInput>& prompts, bool echo) {
  std::vector<EncodedPrompt> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const std::string param = prompts.size() == 1 ? "prompt" : "prompt[" + std::to_string(p) + "]";
    EncodedPrompt e;
    if (prompts[p].is_token_ids) {
      e.ids = prompts[p].token_ids;
      if (echo) {
        const std::vector<uint32_t> ids(e.ids.begin(), e.ids.end());
        e.echo = model.engine->tokenizer().decode(ids);
      }
    } else {
      e.ids = encode_plain(model, prompts[p].text, param, /*add_special_tokens=*/true);
      if (echo) e.echo = prompts[p].text;
    }
    if (e.ids.empty()) throw ApiError::invalid(param, "'" + param + "' encodes to no tokens");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

void handle_chat_completions(const ServedModel& model, const HttpRequest& request,
                             std::shared_ptr<Responder> responder) {
  // Rate limits first (429 before any parsing); the ticket's responder adds x-ratelimit-*.
  const QuotaTicket quota =
      admit_or_refuse(model.quota, request, "/v1/chat/completions", std::move(responder));
  if (!quota.admitted) return;
  responder = quota.responder;
  answer_errors(*responder, [&] {
    check_ready(model);
    ChatCompletionRequest r = parse_chat_completion_request(request.body, model.limits);
    check_model(model, r.settings.model);
    check_model_allowed(request, model.name);
    if (model.chat_template == nullptr) {
      throw ApiError::invalid("messages",
                              "this model has no chat template; use /v1/completions instead");
    }
    std::vector<EncodedPrompt> prompts(1);
    prompts[0].ids =
        encode_chat_request(*model.chat_template, model.engine->tokenizer(), r.messages, r.tools,
                            r.add_generation_prompt, r.template_kwargs);
    std::vector<ChoiceJob> jobs =
        make_jobs(model, r.settings, prompts, Endpoint::kChat, "messages");
    SessionOptions options = session_options(Endpoint::kChat, r.settings, quota);
    if (answer_from_cache(model, request, responder, options, jobs)) return;  // response cache
    run_generation(*model.engine, responder, std::move(options), std::move(jobs));
  });
}

void handle_completions(const ServedModel& model, const HttpRequest& request,
                        std::shared_ptr<Responder> responder) {
  const QuotaTicket quota =
      admit_or_refuse(model.quota, request, "/v1/completions", std::move(responder));
  if (!quota.admitted) return;
  responder = quota.responder;
  answer_errors(*responder, [&] {
    check_ready(model);
    CompletionRequest r = parse_completion_request(request.body, model.limits);
    check_model(model, r.settings.model);
    check_model_allowed(request, model.name);
    const std::vector<EncodedPrompt> prompts = encode_prompts(model, r.prompts, r.echo);
    std::vector<ChoiceJob> jobs =
        make_jobs(model, r.settings, prompts, Endpoint::kCompletion, "prompt");
    SessionOptions options = session_options(Endpoint::kCompletion, r.settings, quota);
    if (answer_from_cache(model, request, responder, options, jobs)) return;  // response cache
    run_generation(*model.engine, responder, std::move(options), std::move(jobs));
  });
}

void handle_models(const ServedModel& model, const HttpRequest& request,
                   std::shared_ptr<Responder> responder) {
  answer_errors(*responder, [&] {
    check_ready(model);
    if (request.principal && !request.principal->may_use_model(model.name)) {
      responder->respond(json_response(Json{{"object", "list"}, {"data", Json::array()}}));
      return;
    }
    const Json entry{{"id", model.name},         {"object", "model"},
                     {"created", model.created}, {"owned_by", "autoglm"},
                     {"root", model.name},       {"max_model_len", model.max_model_len}};
    responder->respond(json_response(Json{{"object", "list"}, {"data", Json::array({entry})}}));
  });
}

void handle_tokenize(const ServedModel& model, const HttpRequest& request,
                     std::shared_ptr<Responder> responder) {
  answer_errors(*responder, [&] {
    check_ready(model);
    const Json doc = parse_request_object(request.body);
    const FieldReader body(doc);
    if (auto name = body.string("model", 256)) check_model(model, *name);
    check_model_allowed(request, model.name);
    std::vector<int32_t> ids;
    if (body.get("messages") != nullptr) {
      if (model.chat_template == nullptr) {
        throw ApiError::invalid("messages", "this model has no chat template");
      }
      const ParsedMessages messages = parse_chat_messages(body, model.limits);
      ids = encode_chat_request(*model.chat_template, model.engine->tokenizer(), messages.messages,
                                parse_chat_tools(body),
                                body.boolean("add_generation_prompt").value_or(true),
                                parse_template_kwargs(body));
    } else {
      const std::optional<std::string> prompt =
          body.string("prompt", model.limits.max_prompt_bytes);
      if (!prompt) throw ApiError::invalid("prompt", "'prompt' or 'messages' is required");
      ids =
          encode_plain(model, *prompt, "prompt", body.boolean("add_special_tokens").value_or(true));
    }
    const auto count = static_cast<int64_t>(ids.size());
    responder->respond(json_response(Json{
        {"tokens", std::move(ids)}, {"count", count}, {"max_model_len", model.max_model_len}}));
  });
}

void handle_detokenize(const ServedModel& model, const HttpRequest& request,
                       std::shared_ptr<Responder> responder) {
  answer_errors(*responder, [&] {
    check_ready(model);
    const Json doc = parse_request_object(request.body);
    const FieldReader body(doc);
    if (auto name = body.string("model", 256)) check_model(model, *name);
    check_model_allowed(request, model.name);
    const Json* tokens = body.get("tokens");
    if (tokens == nullptr) throw ApiError::invalid("tokens", "'tokens' is required");
    if (!tokens->is_array()) wrong_type("tokens", "an array of token ids", *tokens);
    if (tokens->size() > kMaxDetokenizeIds) {
      throw ApiError::invalid(
          "tokens", "'tokens' may hold at most " + std::to_string(kMaxDetokenizeIds) + " ids");
    }
    std::vector<uint32_t> ids;
    for (size_t i = 0; i < tokens->size(); ++i) {
      ids.push_back(static_cast<uint32_t>(integer_value(
          (*tokens)[i], "tokens[" + std::to_string(i) + "]", 0, model.limits.vocab_size - 1)));
    }
    responder->respond(json_response(Json{{"prompt", model.engine->tokenizer().decode(ids)}}));
  });
}

}  // namespace autoglm::server::openai
