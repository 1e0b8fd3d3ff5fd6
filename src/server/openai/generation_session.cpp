// See generation_session.h. Owner: the "openai" thread.
#include "server/openai/generation_session.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "server/openai/api_error.h"
#include "server/openai/engine_errors.h"

namespace autoglm::server::openai {
namespace {

class GenerationSession : public std::enable_shared_from_this<GenerationSession> {
 public:
  GenerationSession(Engine& engine, std::shared_ptr<Responder> responder, SessionOptions options)
      : engine_(engine), responder_(std::move(responder)), options_(std::move(options)) {
    responder_->annotate("model", options_.context.model);
  }

  void start(std::vector<ChoiceJob> jobs);

 private:
  struct Choice {
    int32_t index = 0;
    int32_t group = 0;
    int32_t prompt_tokens = 0;
    std::string echo_prefix;
    std::optional<uint64_t> request_id;
    bool announced = false;  // the first chunk (role / echo) went out
    ChoiceResult result;
    Usage usage;
    int64_t text_offset = 0;  // completions logprobs, streamed
  };
  enum class State { kSubmitting, kRunning, kDone };

  void on_delta(size_t choice, StreamDelta delta);  // connection strand (Responder::defer)
  void on_gone();                                   // I/O thread
  void stream_delta_locked(Choice& c, const StreamDelta& delta);
  void finish_choice_locked(Choice& c, const StreamDelta& delta);
  void fail_locked(const ApiError& error);
  void complete_locked();
  void cancel_all_locked();
  void emit_locked(std::string event);
  UsageTotals totals_locked() const;
  void annotate_outcome_locked(std::string_view finish_reason);

  Engine& engine_;
  std::shared_ptr<Responder> responder_;
  const SessionOptions options_;
  std::mutex mutex_;
  State state_ = State::kSubmitting;
  bool stream_open_ = false;
  std::vector<std::string> buffered_;  // stream events that arrived before start_stream
  std::vector<Choice> choices_;
  size_t finished_ = 0;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool first_token_seen_ = false;  // ttft_ms annotated (streams only)
  int64_t generated_tokens_ = 0;   // every choice's tokens so far (rate-limit charge)
};

void GenerationSession::start(std::vector<ChoiceJob> jobs) {
  for (ChoiceJob& job : jobs) {
    Choice c;
    c.index = job.index;
    c.group = job.prompt_group;
    c.prompt_tokens = job.prompt_tokens;
    c.echo_prefix = job.echo_prefix;
    c.result.index = job.index;
    c.text_offset = code_points(job.echo_prefix);
    choices_.push_back(std::move(c));
  }
  responder_->on_disconnect([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_gone();
  });
  for (size_t i = 0; i < jobs.size(); ++i) {
    uint64_t id = 0;
    try {
      id = engine_.submit(std::move(jobs[i].request),
                          [self = shared_from_this(), i](StreamDelta delta) {
                            // Formatting happens on the connection's strand, not here on the
                            // engine thread (Responder::defer keeps the order).
                            self->responder_->defer([self, i, delta = std::move(delta)]() mutable {
                              self->on_delta(i, std::move(delta));
                            });
                          });
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      fail_locked(api_error_from_exception(e, ""));
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    choices_[i].request_id = id;
    if (state_ == State::kDone) {
      engine_.cancel(id);  // the client left, or another choice failed, while submitting
      return;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != State::kSubmitting) return;
  state_ = State::kRunning;
  if (options_.stream) {
    responder_->start_stream(200, {});
    stream_open_ = true;
    std::vector<std::string> pending = std::move(buffered_);
    for (std::string& event : pending) emit_locked(std::move(event));
  }
  if (finished_ == choices_.size()) complete_locked();
}

void GenerationSession::on_delta(size_t i, StreamDelta delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::kDone) return;
  Choice& c = choices_[i];
  generated_tokens_ += static_cast<int64_t>(delta.token_ids.size());
  if (options_.stream && !first_token_seen_ && !delta.token_ids.empty()) {
    first_token_seen_ = true;
    responder_->annotate("ttft_ms", std::chrono::duration<double, std::milli>(
                                        std::chrono::steady_clock::now() - started_)
                                        .count());
  }
  if (options_.stream) stream_delta_locked(c, delta);
  if (!options_.stream || options_.on_result) {  // the response cache needs a stream's answer too
    c.result.text += delta.text;
    c.result.token_ids.insert(c.result.token_ids.end(), delta.token_ids.begin(),
                              delta.token_ids.end());
    for (Logprobs& lp : delta.logprobs) c.result.logprobs.push_back(std::move(lp));
  }
  if (delta.finish) finish_choice_locked(c, delta);
}

void GenerationSession::stream_delta_locked(Choice& c, const StreamDelta& delta) {
  const ResponseContext& ctx = options_.context;
  const bool usage_null = options_.include_usage;
  const Tokenizer& tokenizer = engine_.tokenizer();
  const bool chat = options_.endpoint == Endpoint::kChat;
  if (!c.announced) {
    c.announced = true;
    if (chat) {
      emit_locked(sse_event(chat_chunk_json(
          ctx, c.index, Json{{"role", "assistant"}, {"content", ""}}, nullptr, {}, usage_null)));
    } else if (!c.echo_prefix.empty()) {
      emit_locked(sse_event(text_chunk_json(ctx, c.index, c.echo_prefix, nullptr, {}, usage_null)));
    }
  }
  const bool logprobs = options_.with_logprobs && !delta.logprobs.empty();
  // Tokens that end mid-character carry no text yet; send them only for their logprobs.
  if (delta.text.empty() && !logprobs) return;
  if (chat) {
    Json lp = logprobs ? chat_logprobs_json(tokenizer, delta.token_ids, delta.logprobs) : nullptr;
    emit_locked(sse_event(chat_chunk_json(ctx, c.index, Json{{"content", delta.text}},
                                          std::move(lp), {}, usage_null)));
  } else {
    Json lp = logprobs ? completion_logprobs_json(tokenizer, delta.token_ids, delta.logprobs,
                                                  c.text_offset)
                       : nullptr;
    emit_locked(
        sse_event(text_chunk_json(ctx, c.index, delta.text, std::move(lp), {}, usage_null)));
  }
}

void GenerationSession::finish_choice_locked(Choice& c, const StreamDelta& delta) {
  const FinishCause cause = *delta.finish;
  if (cause != FinishCause::kStop && cause != FinishCause::kLength) {
    fail_locked(api_error_from_finish(cause));
    return;
  }
  c.result.finish = cause;
  c.usage = delta.usage;
  ++finished_;
  if (options_.stream) {
    const ResponseContext& ctx = options_.context;
    emit_locked(sse_event(
        options_.endpoint == Endpoint::kChat
            ? chat_chunk_json(ctx, c.index, Json::object(), nullptr, cause, options_.include_usage)
            : text_chunk_json(ctx, c.index, "", nullptr, cause, options_.include_usage)));
  }
  if (finished_ == choices_.size() && state_ == State::kRunning) complete_locked();
}

UsageTotals GenerationSession::totals_locked() const {
  UsageTotals totals;
  std::set<int32_t> counted;
  for (const Choice& c : choices_) {
    totals.completion_tokens += c.usage.completion_tokens;
    if (counted.insert(c.group).second) {
      totals.prompt_tokens += c.prompt_tokens;
      totals.cached_tokens += c.usage.cached_prompt_tokens;
    }
  }
  return totals;
}

void GenerationSession::annotate_outcome_locked(std::string_view finish_reason) {
  const UsageTotals totals = totals_locked();
  responder_->annotate("prompt_tokens", totals.prompt_tokens);
  responder_->annotate("completion_tokens", totals.completion_tokens);
  responder_->annotate("cached_tokens", totals.cached_tokens);
  responder_->annotate("finish_reason", std::string(finish_reason));
  if (options_.on_usage) {
    // Rate limits charge what was generated, also when the client left before the end.
    UsageTotals used = totals;
    used.completion_tokens = std::max(used.completion_tokens, generated_tokens_);
    options_.on_usage(used);
  }
}

void GenerationSession::complete_locked() {
  state_ = State::kDone;
  const UsageTotals totals = totals_locked();
  // One reason for the exchange: "stop" or "length" when every choice agrees, else "mixed".
  std::string_view reason =
      choices_.empty() ? "stop" : finish_reason(choices_.front().result.finish);
  for (const Choice& c : choices_) {
    if (finish_reason(c.result.finish) != reason) reason = "mixed";
  }
  annotate_outcome_locked(reason);
  if (options_.on_result && choices_.size() == 1)
    options_.on_result(choices_.front().result, totals);
  const ResponseContext& ctx = options_.context;
  const bool chat = options_.endpoint == Endpoint::kChat;
  if (options_.stream) {
    if (options_.include_usage) {
      emit_locked(sse_event(
          usage_chunk_json(ctx, chat ? "chat.completion.chunk" : "text_completion", totals)));
    }
    emit_locked(std::string(kDoneEvent));
    responder_->end_stream();
    return;
  }
  std::vector<ChoiceResult> results;
  std::vector<std::string> echoes;
  for (Choice& c : choices_) {
    results.push_back(std::move(c.result));
    echoes.push_back(c.echo_prefix);
  }
  const Tokenizer& tokenizer = engine_.tokenizer();
  HttpResponse response;
  response.body = json_text(
      chat ? chat_completion_json(ctx, tokenizer, results, totals, options_.with_logprobs)
           : text_completion_json(ctx, tokenizer, results, totals, options_.with_logprobs, echoes));
  responder_->respond(std::move(response));
}

void GenerationSession::fail_locked(const ApiError& error) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  cancel_all_locked();
  annotate_outcome_locked("error");
  if (stream_open_) {
    // Headers (200) are gone already: the error travels as an event, then the stream ends.
    responder_->send_event(error_event(error));
    responder_->send_event(std::string(kDoneEvent));
    responder_->end_stream();
  } else {
    responder_->respond(error_response(error));
  }
}

void GenerationSession::on_gone() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  cancel_all_locked();
  annotate_outcome_locked("client_gone");
}

void GenerationSession::cancel_all_locked() {
  // Engine::cancel only queues the id, so calling it from the engine thread is safe.
  for (const Choice& c : choices_) {
    if (c.request_id) engine_.cancel(*c.request_id);
  }
}

void GenerationSession::emit_locked(std::string event) {
  if (!stream_open_) {
    buffered_.push_back(std::move(event));
    return;
  }
  if (!responder_->send_event(std::move(event)) && state_ != State::kDone) {
    state_ = State::kDone;  // the client is gone or stopped reading
    cancel_all_locked();
    annotate_outcome_locked("client_gone");
  }
}

}  // namespace

void run_generation(Engine& engine, std::shared_ptr<Responder> responder, SessionOptions options,
                    std::vector<ChoiceJob> jobs) {
  auto session =
      std::make_shared<GenerationSession>(engine, std::move(responder), std::move(options));
  session->start(std::move(jobs));
}

}  // namespace autoglm::server::openai
