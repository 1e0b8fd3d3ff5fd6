// The listener (async accept onto a fresh strand per connection, the connection cap, TLS
// context) and the server's lifecycle: start, drain, abort, stop.
// Thread ownership: public members from the controlling thread; the listener on the I/O threads.
#include "server/http_server.h"

#include <openssl/ssl.h>

#include <sstream>
#include <thread>

#include "core/error.h"
#include "server/error_response.h"
#include "server/http_session.h"
#include "server/json_log.h"

namespace autoglm::server {
namespace {

// At most this many over-the-cap connections get their 503 at once; beyond, they are closed
// silently (a flood must not turn refusals into a second unbounded set of connections).
constexpr int64_t kMaxRefusing = 64;
// After a failed accept (EMFILE, ENFILE, ENOBUFS): wait before accepting again rather than
// spinning on a listener that stays readable.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// A connection over --max-connections: an OpenAI-shaped 503 with Connection: close, a
// half-close, a short read-and-discard (so that the client reads the answer rather than a
// reset caused by its unread request), then close. Bounded in time by the stream's timer.
// It holds only its counter, not the core: a refusal still pending when the server stops is
// destroyed with the io_context, which the core owns.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(std::shared_ptr<std::atomic<int64_t>> refusing, int32_t max_connections,
          net::ip::tcp::socket socket)
      : refusing_(std::move(refusing)),
        max_connections_(max_connections),
        stream_(std::move(socket)) {
    refusing_->fetch_add(1);
  }
  ~Refusal() { refusing_->fetch_sub(1); }

  void run() {
    HttpResponse refusal =
        error_response(503, "the server is at its connection limit (" +
                                std::to_string(max_connections_) + " connections); retry later");
    http::response<http::string_body> message{http::status::service_unavailable, 11};
    message.set(http::field::server, "autoglm");
    message.set(http::field::content_type, refusal.content_type);
    message.set(http::field::retry_after, "1");
    message.keep_alive(false);
    message.body() = std::move(refusal.body);
    message.prepare_payload();
    std::ostringstream serialized;
    serialized << message;
    bytes_ = std::move(serialized).str();
    stream_.expires_after(std::chrono::seconds(2));
    net::async_write(
        stream_, net::buffer(bytes_), [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->close();
          beast::error_code ignored;
          self->stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
          self->discard();
        });
  }

 private:
  void discard() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->close();
                              self->discard();
                            });
  }
  void close() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

  std::shared_ptr<std::atomic<int64_t>> refusing_;
  int32_t max_connections_;
  beast::tcp_stream stream_;
  std::string bytes_;
  std::array<char, 1024> scratch_{};
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::shared_ptr<ServerCore> core, net::ip::tcp::endpoint endpoint)
      : core_(std::move(core)),
        acceptor_(net::make_strand(core_->io_context)),
        backoff_(acceptor_.get_executor()) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      fail(ErrorCode::kInvalidArgument, "cannot listen on " + endpoint.address().to_string() + ":" +
                                            std::to_string(endpoint.port()) + ": " + ec.message());
    }
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start() { do_accept(); }
  void close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->backoff_.cancel();
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(
        net::make_strand(core_->io_context),
        [self = shared_from_this()](beast::error_code ec, net::ip::tcp::socket socket) {
          self->on_accept(ec, std::move(socket));
        });
  }

  void on_accept(beast::error_code ec, net::ip::tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      log_json(LogLevel::kWarn, "accept failed", {{"error", ec.message()}});
      backoff_.expires_after(kAcceptBackoff);
      backoff_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec && self->acceptor_.is_open()) self->do_accept();
      });
      return;
    }
    if (core_->draining.load()) {
      beast::error_code ignored;
      socket.close(ignored);
    } else if (core_->open_connections.load() >= core_->options.limits.max_connections) {
      refuse(std::move(socket));
    } else {
      beast::error_code endpoint_ec;
      auto remote = socket.remote_endpoint(endpoint_ec);
      std::string client_ip = endpoint_ec ? "" : remote.address().to_string();
      if (core_->tls_context) {
        std::make_shared<HttpSession<TlsStream>>(
            core_, TlsStream(beast::tcp_stream(std::move(socket)), *core_->tls_context),
            std::move(client_ip))
            ->run();
      } else {
        std::make_shared<HttpSession<PlainStream>>(core_, PlainStream(std::move(socket)),
                                                   std::move(client_ip))
            ->run();
      }
    }
    do_accept();
  }

  void refuse(net::ip::tcp::socket socket) {
    // A TLS client would not understand a plain-text answer, and a handshake is not worth
    // spending on a connection that is turned away: it is closed.
    if (core_->tls_context || core_->refusing->load() >= kMaxRefusing) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    log_json(LogLevel::kWarn, "connection refused: at the connection limit",
             {{"max_connections", core_->options.limits.max_connections}});
    std::make_shared<Refusal>(core_->refusing, core_->options.limits.max_connections,
                              std::move(socket))
        ->run();
  }

  std::shared_ptr<ServerCore> core_;
  net::ip::tcp::acceptor acceptor_;
  net::steady_timer backoff_;
};

void load_tls(ServerCore& core) {
  const HttpServerOptions& options = core.options;
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) return;
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    fail(ErrorCode::kInvalidArgument, "TLS needs both --tls-cert and --tls-key");
  }
  auto& context = core.tls_context.emplace(net::ssl::context::tls_server);
  context.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                      net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                      net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  context.use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) {
    fail(ErrorCode::kInvalidArgument,
         "cannot load TLS certificate " + options.tls_cert_file + ": " + ec.message());
  }
  context.use_private_key_file(options.tls_key_file, net::ssl::context::pem, ec);
  if (ec) {
    fail(ErrorCode::kInvalidArgument,
         "cannot load TLS key " + options.tls_key_file + ": " + ec.message());
  }
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<ServerCore> core;
  std::shared_ptr<Listener> listener;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  bool stopped = false;
};

HttpServer::HttpServer(HttpServerOptions options, const Router& router, AdmissionCheck admission)
    : impl_(std::make_unique<Impl>()) {
  if (options.io_threads < 1) fail(ErrorCode::kInvalidArgument, "io_threads must be >= 1");
  impl_->core = std::make_shared<ServerCore>(std::move(options), router, std::move(admission));
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  ServerCore& core = *impl_->core;
  load_tls(core);
  beast::error_code ec;
  auto address = net::ip::make_address(core.options.host, ec);
  if (ec) fail(ErrorCode::kInvalidArgument, "bad --host '" + core.options.host + "'");
  impl_->listener =
      std::make_shared<Listener>(impl_->core, net::ip::tcp::endpoint(address, core.options.port));
  impl_->listener->start();
  impl_->work.emplace(core.io_context.get_executor());
  for (int32_t i = 0; i < core.options.io_threads; ++i) {
    impl_->threads.emplace_back([&core] { core.io_context.run(); });
  }
}

uint16_t HttpServer::port() const {
  return impl_->listener ? impl_->listener->port() : impl_->core->options.port;
}

bool HttpServer::tls() const {
  return impl_->core->tls_context.has_value();
}

void HttpServer::begin_drain() {
  impl_->core->draining.store(true);
  if (impl_->listener) impl_->listener->close();
  for (auto& session : impl_->core->live_sessions()) session->close_if_idle();
}

bool HttpServer::wait_until_idle(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->core->in_flight.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void HttpServer::abort_in_flight() {
  for (auto& session : impl_->core->live_sessions()) session->abort_exchange();
}

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  net::io_context& io_context = impl_->core->io_context;
  impl_->core->draining.store(true);
  if (impl_->listener) impl_->listener->close();
  for (auto& session : impl_->core->live_sessions()) session->close_now();
  // With every socket closed and the work guard gone, run() returns once the aborted operations
  // have completed; a bounded wait covers a handler that would not finish.
  impl_->work.reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!io_context.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  io_context.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  // Run what is still queued (completions of closed connections, late posts) here, so that
  // no handler keeps a connection, and through it the core, alive after the server is gone.
  io_context.restart();
  io_context.poll();
  impl_->listener.reset();
}

const HttpRequestCounters& HttpServer::request_counters() const {
  return impl_->core->counters;
}
int64_t HttpServer::open_connections() const {
  return impl_->core->open_connections.load();
}
int64_t HttpServer::requests_in_flight() const {
  return impl_->core->in_flight.load();
}

}  // namespace autoglm::server
