// See inference_audit.h. Owner: the audit work.
#include "server/openai/inference_audit.h"

#include <mutex>
#include <string>
#include <utility>

#include "server/json_log.h"
#include "server/openai/api_error.h"
#include "server/openai/response_format.h"

namespace autoglm::server::openai {
namespace {

ApiError audit_unavailable() {
  return ApiError(503, "the audit log is unavailable; the request cannot be served", "server_error",
                  std::nullopt, "audit_unavailable");
}

security::AuditEvent base_event(const InferenceAudit& audit, const HttpRequest& request) {
  security::AuditEvent event;
  event.action = "inference";
  event.user_id = request.principal ? request.principal->id : "anonymous";
  event.resource = audit.served_model;
  event.client_ip = request.client_ip;
  event.trace_id = request.trace_id;
  return event;
}

void log_lost_record(const security::AuditEvent& event) {
  log_json(LogLevel::kError, "audit record lost",
           {{"action", event.action}, {"trace_id", event.trace_id}});
}

class AuditingResponder : public ForwardingResponder {
 public:
  AuditingResponder(std::shared_ptr<Responder> inner, security::AuditSink& sink, bool fail_closed,
                    security::AuditEvent event)
      : ForwardingResponder(std::move(inner)),
        sink_(sink),
        fail_closed_(fail_closed),
        event_(std::move(event)) {}

  // A session dropped without an answer (the client left): the record still gets written.
  ~AuditingResponder() override {
    std::lock_guard lock(mutex_);
    if (recorded_) return;
    event_.detail = finish_reason_.empty() ? "no answer" : finish_reason_;
    write_locked("error", 0);
  }

  void respond(HttpResponse response) override {
    std::lock_guard lock(mutex_);
    if (recorded_) return inner().respond(std::move(response));  // ignored by the inner one
    const bool ok = response.status < 400;
    if (!ok) event_.detail = "answered " + std::to_string(response.status);
    if (!write_locked(ok ? "ok" : "error", response.status) && fail_closed_) {
      response = error_response(audit_unavailable());
    }
    inner().respond(std::move(response));
  }

  void start_stream(int status, HttpHeaders headers) override {
    std::lock_guard lock(mutex_);
    stream_status_ = status;
    inner().start_stream(status, std::move(headers));
  }

  bool send_event(std::string framed) override {
    std::lock_guard lock(mutex_);
    if (fail_closed_ && framed == kDoneEvent) {  // [DONE] waits for the record (end_stream)
      held_done_ = true;
      return true;
    }
    return inner().send_event(std::move(framed));
  }

  void end_stream() override {
    std::lock_guard lock(mutex_);
    if (!recorded_) {
      const bool ok = finish_reason_ != "error";
      if (!ok) event_.detail = "error event";
      if (!write_locked(ok ? "ok" : "error", stream_status_) && fail_closed_) {
        inner().send_event(error_event(audit_unavailable()));
      }
    }
    if (held_done_) inner().send_event(std::string(kDoneEvent));
    inner().end_stream();
  }

  void annotate(std::string key, AnnotationValue value) override {
    {
      std::lock_guard lock(mutex_);
      const auto* text = std::get_if<std::string>(&value);
      const auto* count = std::get_if<int64_t>(&value);
      if (key == "model" && text != nullptr && !text->empty()) event_.resource = *text;
      if (key == "prompt_tokens" && count != nullptr) event_.prompt_tokens = *count;
      if (key == "completion_tokens" && count != nullptr) event_.completion_tokens = *count;
      if (key == "finish_reason" && text != nullptr) finish_reason_ = *text;
    }
    inner().annotate(std::move(key), std::move(value));
  }

 private:
  bool write_locked(const char* status, int http_status) {
    recorded_ = true;
    event_.status = status;
    event_.http_status = http_status;
    if (sink_.record(event_)) return true;
    log_lost_record(event_);
    return false;
  }

  security::AuditSink& sink_;
  const bool fail_closed_;
  std::mutex mutex_;
  security::AuditEvent event_;
  std::string finish_reason_;
  int stream_status_ = 200;
  bool recorded_ = false;
  bool held_done_ = false;
};

}  // namespace

bool refuse_unaudited(const InferenceAudit& audit, const HttpRequest& request,
                      const std::shared_ptr<Responder>& responder) {
  if (audit.sink == nullptr || !audit.fail_closed || audit.sink->healthy()) return false;
  // The refusal is this request's one record. Writing it also probes the log: when it
  // succeeds the log is healthy again and the next request is served.
  security::AuditEvent event = base_event(audit, request);
  event.status = "error";
  event.http_status = 503;
  event.detail = "refused: audit log unavailable";
  if (!audit.sink->record(event)) log_lost_record(event);
  responder->respond(error_response(audit_unavailable()));
  return true;
}

std::shared_ptr<Responder> audited_responder(const InferenceAudit& audit,
                                             const HttpRequest& request,
                                             std::shared_ptr<Responder> responder) {
  if (audit.sink == nullptr) return responder;
  return std::make_shared<AuditingResponder>(std::move(responder), *audit.sink, audit.fail_closed,
                                             base_event(audit, request));
}

}  // namespace autoglm::server::openai
