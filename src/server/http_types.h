// The plain-data seam between the HTTP layer (connections, TLS, limits, routing) and the
// handlers that answer requests (the OpenAI API, health, metrics). A handler receives an
// HttpRequest and a Responder, and answers through the Responder exactly once: one whole
// response, or a stream (server-sent events) that it ends.
// Thread ownership: an HttpRequest belongs to the handler call. A Responder is safe from any
// thread (the engine thread's delta callbacks use it): the HTTP layer posts every call to the
// connection's own executor, so a handler never blocks an I/O thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "security/principal.h"

namespace autoglm::server {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A value a handler adds to its request's access-log line (a model name, a token count, ...).
using AnnotationValue = std::variant<std::string, int64_t, double>;

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // as sent: path and query
  std::string path;     // target without the query
  HttpHeaders headers;  // names lower-cased
  std::string body;     // already bounded by the configured body limit
  std::string client_ip;
  std::string request_id;  // generated per request, returned as x-request-id
  std::string trace_id;    // from a W3C traceparent header, else generated
  // Who is calling, set by the auth layer before dispatch; null when auth is off.
  std::shared_ptr<const security::Principal> principal;

  // The first header of that (lower-case) name.
  std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return std::string_view(value);
    }
    return std::nullopt;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  HttpHeaders headers;  // extra headers (Retry-After, ...)
  std::string body;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response; ends the exchange. Later calls are ignored.
  virtual void respond(HttpResponse response) = 0;
  // Starts a text/event-stream response (chunked). Then send_event() any number of times
  // and end_stream() once.
  virtual void start_stream(int status, HttpHeaders headers) = 0;
  // Queues one event's bytes, already framed ("data: {...}\n\n"). Returns false once the
  // client is gone or its unsent bytes exceed the per-connection limit (a client that stopped
  // reading); the caller should then cancel its work.
  virtual bool send_event(std::string framed) = 0;
  virtual void end_stream() = 0;
  // `on_gone` runs once (on an I/O thread) if the client disconnects or times out before the
  // exchange ended, so the handler can cancel the generation. Set it before submitting work.
  virtual void on_disconnect(std::function<void()> on_gone) = 0;
  // Adds `key` (a later call with the same key replaces it) to the exchange's access-log line,
  // written when the exchange ends; the core fields (status, route, ...) cannot be replaced.
  // Safe from any thread, before or after the answer. Never pass prompt or output text.
  // The default drops it: a Responder that writes no access log has nowhere to put it.
  virtual void annotate(std::string /*key*/, AnnotationValue /*value*/) {}
  // Runs `work` later on the connection's own executor, in call order: the engine thread hands
  // a generated delta over this way instead of formatting its JSON itself, which at hundreds of
  // streams would idle the GPU between steps. The default runs it at once on the caller.
  virtual void defer(std::function<void()> work) { work(); }
};

// A Responder that passes every call on to `inner`: the base of the decorators that change
// only some calls (add headers, write an audit record, hold a model lease).
class ForwardingResponder : public Responder {
 public:
  explicit ForwardingResponder(std::shared_ptr<Responder> inner) : inner_(std::move(inner)) {}
  void respond(HttpResponse response) override { inner_->respond(std::move(response)); }
  void start_stream(int status, HttpHeaders headers) override {
    inner_->start_stream(status, std::move(headers));
  }
  bool send_event(std::string framed) override { return inner_->send_event(std::move(framed)); }
  void end_stream() override { inner_->end_stream(); }
  void on_disconnect(std::function<void()> on_gone) override {
    inner_->on_disconnect(std::move(on_gone));
  }
  void annotate(std::string key, AnnotationValue value) override {
    inner_->annotate(std::move(key), std::move(value));
  }
  void defer(std::function<void()> work) override { inner_->defer(std::move(work)); }

 protected:
  Responder& inner() { return *inner_; }

 private:
  std::shared_ptr<Responder> inner_;
};

using Handler = std::function<void(const HttpRequest&, std::shared_ptr<Responder>)>;

}  // namespace autoglm::server
