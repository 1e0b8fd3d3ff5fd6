// One connection's read / route / write cycle (see http_session.h). Explicitly instantiated for
// plain TCP and TLS so that Beast is compiled in this file only.
// Thread ownership: the connection's strand, except the documented any-thread entry points.
#include "server/http_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <sstream>
#include <variant>

#include "security/pii_mask.h"
#include "server/error_response.h"
#include "server/json_log.h"
#include "server/trace_context.h"

namespace autoglm::server {
namespace {

template <class Stream>
class SessionResponder : public Responder {
 public:
  SessionResponder(std::shared_ptr<HttpSession<Stream>> session, std::shared_ptr<Exchange> exchange)
      : session_(std::move(session)), exchange_(std::move(exchange)) {}
  void respond(HttpResponse response) override {
    session_->post_respond(exchange_, std::move(response));
  }
  void start_stream(int status, HttpHeaders headers) override {
    session_->post_start_stream(exchange_, status, std::move(headers));
  }
  bool send_event(std::string framed) override {
    return session_->queue_event(exchange_, std::move(framed));
  }
  void end_stream() override { session_->post_end_stream(exchange_); }
  void on_disconnect(std::function<void()> on_gone) override {
    session_->post_on_disconnect(exchange_, std::move(on_gone));
  }
  void annotate(std::string key, AnnotationValue value) override {
    exchange_->annotate(std::move(key), std::move(value));
  }
  void defer(std::function<void()> work) override { session_->post_work(std::move(work)); }

 private:
  std::shared_ptr<HttpSession<Stream>> session_;
  std::shared_ptr<Exchange> exchange_;
};

std::string lower_case(std::string_view text) {
  std::string lowered(text);
  for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lowered;
}

// Bytes read per byte-read call (the watch, the idle wait, the drain): the watch stops once it
// holds any, so at most this much of a pipelined next request is buffered early.
constexpr size_t kByteReadChunk = 4096;
constexpr size_t kLoggedBodyBytes = 4096;  // log_request_bodies excerpt

bool is_quiet_close(beast::error_code ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::operation_aborted || ec == net::error::connection_reset ||
         ec == net::ssl::error::stream_truncated;
}

}  // namespace

template <class Stream>
HttpSession<Stream>::HttpSession(std::shared_ptr<ServerCore> core, Stream stream,
                                 std::string client_ip)
    : core_(std::move(core)),
      stream_(std::move(stream)),
      client_ip_(std::move(client_ip)),
      timer_(stream_.get_executor()) {
  core_->open_connections.fetch_add(1);
}

template <class Stream>
HttpSession<Stream>::~HttpSession() {
  if (exchange_ && !exchange_->accounted) {
    finish_accounting(*exchange_, exchange_->status != 0 ? exchange_->status : 499);
  }
  core_->unregister_session(this);
  core_->open_connections.fetch_sub(1);
}

template <class Stream>
void HttpSession<Stream>::run() {
  core_->register_session(this, this->weak_from_this());
  post([self = this->shared_from_this()] {
    if constexpr (kTls) {
      self->lowest().expires_after(self->limits().header_timeout);
      self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
        if (ec) return self->fail(ec, "tls handshake");
        self->do_read();
      });
    } else {
      self->do_read();
    }
  });
}

template <class Stream>
void HttpSession<Stream>::do_read() {
  if (closed_) return;
  if (core_->draining.load()) return shutdown();
  parser_.emplace();
  parser_->header_limit(limits().max_header_bytes);
  parser_->body_limit(limits().max_body_bytes);
  idle_ = true;
  // A new connection's first head must arrive within the header timeout from the accept; on a
  // kept-alive one the idle timeout runs until the next request's first byte, then the head
  // gets the header timeout (a slowloris client on a reused connection is cut off too).
  if (first_request_ || buffer_.size() > 0) return read_head();
  arm_timer(limits().idle_timeout);
  if (!reading_bytes_) read_bytes();  // else the watch read still pending waits for the byte
}

template <class Stream>
void HttpSession<Stream>::read_head() {
  ++timer_generation_;
  timer_.cancel();
  lowest().expires_after(limits().header_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

template <class Stream>
void HttpSession<Stream>::read_bytes() {
  reading_bytes_ = true;
  lowest().expires_never();  // bounded by timer_ (idle wait, drain) or by nothing (the watch)
  stream_.async_read_some(buffer_.prepare(kByteReadChunk),
                          [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                            self->on_bytes(ec, bytes);
                          });
}

template <class Stream>
void HttpSession<Stream>::on_bytes(beast::error_code ec, size_t bytes) {
  reading_bytes_ = false;
  buffer_.commit(bytes);
  if (closed_) return;
  if (shutting_down_) {
    if constexpr (kTls) {
      return start_tls_shutdown();  // shutdown() cancelled this read to make way for it
    } else {
      buffer_.consume(buffer_.size());
      if (ec) return close_socket();
      return read_bytes();
    }
  }
  if (ec) {
    // A client that half-closes after its answer was queued still gets that answer.
    if (exchange_ && exchange_->ended && is_quiet_close(ec)) {
      close_after_ = true;
      return;
    }
    return fail(ec, exchange_ ? "read while handling" : "idle read");
  }
  // During an exchange these bytes start a pipelined next request: they wait in buffer_ for
  // its parse, and the watch stops (the buffer stays bounded; writes still notice a close).
  if (exchange_) return;
  if (idle_) read_head();
}

template <class Stream>
void HttpSession<Stream>::arm_timer(std::chrono::milliseconds after) {
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(after);
  timer_.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
    if (ec || self->closed_ || generation != self->timer_generation_) return;
    self->fail(beast::error::timeout, "timer");
  });
}

template <class Stream>
void HttpSession<Stream>::on_header(beast::error_code ec) {
  idle_ = false;
  first_request_ = false;
  if (ec) return on_read_error(ec);
  if (parser_->is_done()) return on_request();
  lowest().expires_after(limits().body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = this->shared_from_this()](beast::error_code read_ec, size_t) {
                     if (read_ec) return self->on_read_error(read_ec);
                     self->on_request();
                   });
}

template <class Stream>
void HttpSession<Stream>::on_read_error(beast::error_code ec) {
  if (closed_) return;
  if (ec == http::error::header_limit) {
    return respond_early(431, fmt::format("request header fields exceed the limit of {} bytes",
                                          limits().max_header_bytes));
  }
  if (ec == http::error::body_limit) {
    return respond_early(
        413, fmt::format("request body exceeds the limit of {} bytes", limits().max_body_bytes));
  }
  if (ec == beast::error::timeout || is_quiet_close(ec)) return fail(ec, "read");
  respond_early(400, "malformed HTTP request: " + ec.message());
}

template <class Stream>
std::shared_ptr<Exchange> HttpSession<Stream>::new_exchange(const HttpRequest* request) {
  auto exchange = std::make_shared<Exchange>();
  exchange->request_id = "req-" + random_hex(12);
  exchange->client_ip = client_ip_;
  std::optional<TraceParent> parent;
  if (request != nullptr) {
    exchange->method = request->method;
    exchange->path = request->path;
    if (auto header = request->header("traceparent")) parent = parse_traceparent(*header);
  }
  exchange->trace_id = parent ? parent->trace_id : random_hex(16);
  if (parent) exchange->trace_flags = parent->flags;
  core_->in_flight.fetch_add(1);
  return exchange;
}

template <class Stream>
void HttpSession<Stream>::respond_early(int status, std::string message) {
  close_after_ = true;
  exchange_ = new_exchange(nullptr);
  on_respond(exchange_, error_response(status, message));
}

template <class Stream>
void HttpSession<Stream>::on_request() {
  auto& message = parser_->get();
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.path = request.target.substr(0, request.target.find('?'));
  for (const auto& field : message) {
    auto name = field.name_string();
    auto value = field.value();
    request.headers.emplace_back(lower_case(std::string_view(name.data(), name.size())),
                                 std::string(value.data(), value.size()));
  }
  request.body = std::move(message.body());
  request.client_ip = client_ip_;
  close_after_ = !message.keep_alive() || core_->draining.load();
  exchange_ = new_exchange(&request);
  request.request_id = exchange_->request_id;
  request.trace_id = exchange_->trace_id;
  exchange_->route = core_->router.match(request.method, request.path).route_label;
  auto exchange = exchange_;
  if (core_->options.log_request_bodies &&
      spdlog::default_logger_raw()->should_log(spdlog::level::debug)) {
    log_json(LogLevel::kDebug, "request body",
             {{"request_id", exchange->request_id},
              {"route", exchange->route},
              {"body_bytes", request.body.size()},
              {"body", security::mask_pii_excerpt(request.body, kLoggedBodyBytes)}});
  }
  // Watch the socket while the handler runs, so that a client leaving is noticed now.
  if (buffer_.size() == 0 && !reading_bytes_) read_bytes();
  auto responder = std::make_shared<SessionResponder<Stream>>(this->shared_from_this(), exchange);
  try {
    if (core_->options.authenticate) {
      if (auto refusal = core_->options.authenticate(request)) {
        return on_respond(exchange, std::move(*refusal));
      }
      if (request.principal) exchange->annotate("user_id", request.principal->id);
    }
    if (core_->admission) {
      if (auto refusal = core_->admission(request, exchange->route)) {
        return on_respond(exchange, std::move(*refusal));
      }
    }
    core_->router.dispatch(request, responder);
  } catch (const std::exception& error) {
    // The message may hold internals: it goes to the log, never to the client.
    log_json(LogLevel::kError, "handler failed",
             {{"request_id", exchange->request_id},
              {"trace_id", exchange->trace_id},
              {"route", exchange->route},
              {"error", security::mask_pii(error.what())}});
    responder->respond(
        error_response(500, "internal server error (request id " + exchange->request_id + ")"));
  }
}

template <class Stream>
template <class Header>
void HttpSession<Stream>::add_common_headers(Header& header, const Exchange& exchange) {
  header.set(http::field::server, "autoglm");
  header.set("x-request-id", exchange.request_id);
  header.set("traceparent", make_traceparent(exchange.trace_id, exchange.trace_flags));
  if (core_->draining.load()) close_after_ = true;
  header.keep_alive(!close_after_);
}

template <class Stream>
void HttpSession<Stream>::on_respond(const std::shared_ptr<Exchange>& exchange,
                                     HttpResponse response) {
  if (closed_ || exchange != exchange_ || exchange->ended || exchange->streaming) return;
  http::response<http::string_body> message{static_cast<http::status>(response.status), 11};
  message.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message.set(name, value);
  add_common_headers(message, *exchange);
  message.body() = std::move(response.body);
  message.prepare_payload();
  std::ostringstream serialized;
  serialized << message;
  exchange->status = response.status;
  exchange->ended = true;
  exchange->on_gone = nullptr;  // the exchange can no longer be abandoned midway
  enqueue(std::move(serialized).str(), 0);
}

template <class Stream>
void HttpSession<Stream>::on_start_stream(const std::shared_ptr<Exchange>& exchange, int status,
                                          HttpHeaders headers) {
  if (closed_ || exchange != exchange_ || exchange->ended || exchange->streaming) return;
  http::response<http::empty_body> message{static_cast<http::status>(status), 11};
  message.set(http::field::content_type, "text/event-stream");
  message.set(http::field::cache_control, "no-cache");
  for (const auto& [name, value] : headers) message.set(name, value);
  add_common_headers(message, *exchange);
  message.chunked(true);
  std::ostringstream serialized;
  serialized << message.base();
  exchange->status = status;
  exchange->streaming = true;
  enqueue(std::move(serialized).str(), 0);
}

template <class Stream>
void HttpSession<Stream>::on_event(const std::shared_ptr<Exchange>& exchange, std::string framed,
                                   uint64_t size) {
  if (closed_ || exchange != exchange_ || exchange->ended || !exchange->streaming ||
      framed.empty()) {
    unsent_.fetch_sub(size);
    return;
  }
  std::string chunk = fmt::format("{:x}\r\n", framed.size());
  chunk += framed;
  chunk += "\r\n";
  enqueue(std::move(chunk), size);
}

template <class Stream>
void HttpSession<Stream>::on_end_stream(const std::shared_ptr<Exchange>& exchange) {
  if (closed_ || exchange != exchange_ || exchange->ended || !exchange->streaming) return;
  exchange->ended = true;
  exchange->on_gone = nullptr;
  enqueue("0\r\n\r\n", 0);
}

template <class Stream>
void HttpSession<Stream>::on_overflow(const std::shared_ptr<Exchange>& exchange) {
  if (closed_ || exchange != exchange_) return;
  log_json(LogLevel::kWarn, "client not reading; connection dropped",
           {{"request_id", exchange->request_id},
            {"trace_id", exchange->trace_id},
            {"route", exchange->route},
            {"unsent_bytes", unsent_.load()}});
  fail(beast::error::timeout, "unsent bytes over the limit");
}

template <class Stream>
void HttpSession<Stream>::enqueue(std::string bytes, uint64_t accounted) {
  outbox_.push_back({std::move(bytes), accounted});
  do_write();
}

template <class Stream>
void HttpSession<Stream>::do_write() {
  if (writing_ || outbox_.empty() || closed_) return;
  writing_ = true;
  lowest().expires_after(limits().write_timeout);
  net::async_write(stream_, net::buffer(outbox_.front().bytes),
                   [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                     self->on_write(ec, bytes);
                   });
}

template <class Stream>
void HttpSession<Stream>::on_write(beast::error_code ec, size_t bytes) {
  writing_ = false;
  // A close can run between the write finishing and this handler: the outbox is gone then.
  if (closed_ || outbox_.empty()) return;
  if (ec) return fail(ec, "write");
  unsent_.fetch_sub(outbox_.front().accounted);
  outbox_.pop_front();
  if (exchange_) exchange_->bytes_sent += bytes;
  if (!outbox_.empty()) return do_write();
  if (exchange_ && exchange_->ended) complete_exchange();
}

template <class Stream>
void HttpSession<Stream>::complete_exchange() {
  finish_accounting(*exchange_, exchange_->status);
  exchange_.reset();
  if (close_after_ || core_->draining.load()) return shutdown();
  do_read();
}

template <class Stream>
void HttpSession<Stream>::finish_accounting(Exchange& exchange, int status) {
  if (exchange.accounted) return;
  exchange.accounted = true;
  core_->in_flight.fetch_sub(1);
  std::string method = exchange.method.empty() ? "-" : exchange.method;
  core_->counters.count(exchange.route, method, status);
  double latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - exchange.started)
          .count();
  nlohmann::json fields = {{"request_id", exchange.request_id},
                           {"trace_id", exchange.trace_id},
                           {"method", method},
                           {"route", exchange.route},
                           {"status", status},
                           {"latency_ms", latency_ms},
                           {"bytes_sent", exchange.bytes_sent},
                           {"stream", exchange.streaming},
                           {"client_ip", exchange.client_ip}};
  for (auto& annotation : exchange.annotations()) {
    const std::string& key = annotation.first;  // (clang 14 cannot capture a binding)
    if (fields.contains(key)) continue;         // a handler cannot rewrite the core fields
    std::visit([&fields, &key](auto& v) { fields[key] = std::move(v); }, annotation.second);
  }
  log_json(LogLevel::kInfo, "request", fields);
}

template <class Stream>
void HttpSession<Stream>::notify_gone(Exchange& exchange) {
  exchange.gone.store(true);
  auto on_gone = std::move(exchange.on_gone);
  exchange.on_gone = nullptr;
  if (!on_gone) return;
  try {
    on_gone();
  } catch (const std::exception& error) {
    log_json(LogLevel::kError, "disconnect callback failed",
             {{"request_id", exchange.request_id}, {"error", security::mask_pii(error.what())}});
  }
}

template <class Stream>
void HttpSession<Stream>::shutdown() {
  if (closed_ || shutting_down_) return;
  shutting_down_ = true;
  // Half-close, then read and discard for a moment, so that a client still sending (e.g. a
  // body after a 413) gets our answer rather than a reset.
  arm_timer(std::chrono::seconds(2));
  if constexpr (kTls) {
    beast::error_code ignored;
    // A pending watch read is cancelled first; its completion starts the TLS shutdown.
    if (reading_bytes_) return static_cast<void>(lowest().socket().cancel(ignored));
    start_tls_shutdown();
  } else {
    beast::error_code ignored;
    lowest().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    if (!reading_bytes_) read_bytes();  // each completion discards and reads again (on_bytes)
  }
}

template <class Stream>
void HttpSession<Stream>::start_tls_shutdown() {
  if constexpr (kTls) {
    stream_.async_shutdown(
        [self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
  }
}

template <class Stream>
void HttpSession<Stream>::fail(beast::error_code ec, const char* where) {
  if (closed_) return;
  if (exchange_ && !exchange_->ended) {
    log_json(LogLevel::kInfo, "client gone",
             {{"request_id", exchange_->request_id},
              {"trace_id", exchange_->trace_id},
              {"route", exchange_->route},
              {"where", where},
              {"error", ec.message()}});
    notify_gone(*exchange_);
  }
  close_socket();
}

template <class Stream>
void HttpSession<Stream>::close_socket() {
  if (closed_) return;
  closed_ = true;
  if (exchange_) {
    if (!exchange_->ended) notify_gone(*exchange_);
    exchange_->gone.store(true);
    finish_accounting(*exchange_, exchange_->ended ? exchange_->status : 499);
    exchange_->on_gone = nullptr;
  }
  outbox_.clear();
  ++timer_generation_;
  timer_.cancel();
  // basic_stream::close() closes the socket and cancels its timer, so nothing stays queued.
  lowest().close();
}

template <class Stream>
void HttpSession<Stream>::close_if_idle() {
  post([self = this->shared_from_this()] {
    if (self->idle_ && !self->exchange_) self->close_socket();
  });
}

template <class Stream>
void HttpSession<Stream>::abort_exchange() {
  post([self = this->shared_from_this()] {
    auto exchange = self->exchange_;
    if (self->closed_ || !exchange || exchange->ended) return;
    self->close_after_ = true;
    self->notify_gone(*exchange);
    if (exchange->streaming) {
      std::string event =
          "data: " + error_body("the server is shutting down", "service_unavailable_error") +
          "\n\n";
      self->enqueue(fmt::format("{:x}\r\n{}\r\n", event.size(), event), 0);
      exchange->ended = true;
      self->enqueue("0\r\n\r\n", 0);
    } else {
      self->on_respond(exchange, error_response(503, "the server is shutting down"));
    }
  });
}

template <class Stream>
void HttpSession<Stream>::close_now() {
  post([self = this->shared_from_this()] { self->fail(net::error::operation_aborted, "stop"); });
}

template <class Stream>
void HttpSession<Stream>::post_respond(std::shared_ptr<Exchange> exchange, HttpResponse response) {
  post([self = this->shared_from_this(), exchange = std::move(exchange),
        response = std::move(response)]() mutable {
    self->on_respond(exchange, std::move(response));
  });
}

template <class Stream>
void HttpSession<Stream>::post_start_stream(std::shared_ptr<Exchange> exchange, int status,
                                            HttpHeaders headers) {
  post([self = this->shared_from_this(), exchange = std::move(exchange), status,
        headers = std::move(headers)]() mutable {
    self->on_start_stream(exchange, status, std::move(headers));
  });
}

template <class Stream>
bool HttpSession<Stream>::queue_event(std::shared_ptr<Exchange> exchange, std::string framed) {
  if (exchange->gone.load()) return false;
  uint64_t size = framed.size();
  uint64_t before = unsent_.fetch_add(size);
  if (before + size > limits().max_unsent_bytes) {
    unsent_.fetch_sub(size);
    post([self = this->shared_from_this(), exchange] { self->on_overflow(exchange); });
    return false;
  }
  post([self = this->shared_from_this(), exchange = std::move(exchange), framed = std::move(framed),
        size]() mutable { self->on_event(exchange, std::move(framed), size); });
  return true;
}

template <class Stream>
void HttpSession<Stream>::post_end_stream(std::shared_ptr<Exchange> exchange) {
  post([self = this->shared_from_this(), exchange = std::move(exchange)] {
    self->on_end_stream(exchange);
  });
}

template <class Stream>
void HttpSession<Stream>::post_on_disconnect(std::shared_ptr<Exchange> exchange,
                                             std::function<void()> on_gone) {
  post([self = this->shared_from_this(), exchange = std::move(exchange),
        on_gone = std::move(on_gone)]() mutable {
    if (exchange->ended) return;
    exchange->on_gone = std::move(on_gone);
    if (exchange->gone.load()) self->notify_gone(*exchange);
  });
}

template class HttpSession<PlainStream>;
template class HttpSession<TlsStream>;

}  // namespace autoglm::server
