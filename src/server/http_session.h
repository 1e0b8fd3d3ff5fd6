// Internal to the HTTP layer: one client connection (plain TCP or TLS) as a chain of
// asynchronous operations on its strand: TLS handshake, read request head (header limit and
// timeout), read body (body limit), admission + routing, write the answer (a whole response or
// a chunked SSE stream, with a write timeout and a bound on unsent bytes), then keep-alive or
// close. Its Responder posts every call onto the strand, so handlers may answer from any thread.
// While a handler runs, one read stays pending on the socket (the "watch"): a client that
// closes is noticed at once, not at the next write, and the handler's on_disconnect cancels its
// work; bytes it reads are kept (bounded) as the start of a pipelined next request. Between
// requests the same byte read waits up to the idle timeout for the next request's first byte;
// from that byte on, the head must arrive within the header timeout.
// Thread ownership: every member runs on the connection's strand, except queue_event() and
// the post_*() entry points, which only touch atomics and post.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (C++20).
#include <utility>
// clang-format off
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "server/server_core.h"

namespace autoglm::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
class HttpSession : public SessionControl,
                    public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(std::shared_ptr<ServerCore> core, Stream stream, std::string client_ip);
  ~HttpSession() override;

  void run();

  // SessionControl (any thread).
  void close_if_idle() override;
  void abort_exchange() override;
  void close_now() override;

  // The Responder's entry points (any thread).
  void post_respond(std::shared_ptr<Exchange> exchange, HttpResponse response);
  void post_start_stream(std::shared_ptr<Exchange> exchange, int status, HttpHeaders headers);
  bool queue_event(std::shared_ptr<Exchange> exchange, std::string framed);
  void post_end_stream(std::shared_ptr<Exchange> exchange);
  void post_on_disconnect(std::shared_ptr<Exchange> exchange, std::function<void()> on_gone);
  // Runs `work` on this connection's strand (Responder::defer), after what is already posted.
  void post_work(std::function<void()> work) { post(std::move(work)); }

 private:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  struct Outgoing {
    std::string bytes;
    uint64_t accounted;  // bytes counted against max_unsent_bytes by queue_event
  };

  template <class Fn>
  void post(Fn&& fn) {
    net::post(stream_.get_executor(), std::forward<Fn>(fn));
  }
  auto& lowest() { return beast::get_lowest_layer(stream_); }
  const HttpLimits& limits() const { return core_->options.limits; }

  void do_read();
  void read_head();
  void read_bytes();
  void on_bytes(beast::error_code ec, size_t bytes);
  void arm_timer(std::chrono::milliseconds after);
  void on_header(beast::error_code ec);
  void on_read_error(beast::error_code ec);
  void on_request();
  void respond_early(int status, std::string message);
  std::shared_ptr<Exchange> new_exchange(const HttpRequest* request);

  void on_respond(const std::shared_ptr<Exchange>& exchange, HttpResponse response);
  void on_start_stream(const std::shared_ptr<Exchange>& exchange, int status, HttpHeaders headers);
  void on_event(const std::shared_ptr<Exchange>& exchange, std::string framed, uint64_t size);
  void on_end_stream(const std::shared_ptr<Exchange>& exchange);
  void on_overflow(const std::shared_ptr<Exchange>& exchange);
  template <class Header>
  void add_common_headers(Header& header, const Exchange& exchange);

  void enqueue(std::string bytes, uint64_t accounted);
  void do_write();
  void on_write(beast::error_code ec, size_t bytes);
  void complete_exchange();
  void finish_accounting(Exchange& exchange, int status);
  void notify_gone(Exchange& exchange);

  void shutdown();
  void start_tls_shutdown();
  void fail(beast::error_code ec, const char* where);
  void close_socket();

  std::shared_ptr<ServerCore> core_;
  Stream stream_;
  std::string client_ip_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Exchange> exchange_;
  std::deque<Outgoing> outbox_;
  std::atomic<uint64_t> unsent_{0};
  // Bounds the idle wait for a next request's first byte and the drain after a half-close;
  // the stream's own timer cannot, as it applies only to operations started after it is set.
  net::steady_timer timer_;
  uint64_t timer_generation_ = 0;  // a timer firing for an older wait does nothing
  bool reading_bytes_ = false;     // the byte read (watch / idle wait / drain) is pending
  bool writing_ = false;
  bool first_request_ = true;
  bool idle_ = false;  // waiting for the next request head
  bool close_after_ = false;
  bool shutting_down_ = false;
  bool closed_ = false;
};

extern template class HttpSession<PlainStream>;
extern template class HttpSession<TlsStream>;

}  // namespace autoglm::server
