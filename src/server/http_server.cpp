// The listener (async accept onto a fresh strand per connection, the connection cap, TLS
// context) and the server's lifecycle: start, drain, abort, stop.
// Thread ownership: public members from the controlling thread; the listener on the I/O threads.
#include "server/http_server.h"

#include <openssl/ssl.h>

#include <thread>

#include "core/error.h"
#include "server/http_session.h"
#include "server/json_log.h"

namespace autoglm::server {
namespace {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::shared_ptr<ServerCore> core, net::ip::tcp::endpoint endpoint)
      : core_(std::move(core)), acceptor_(net::make_strand(core_->io_context)) {
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
    } else if (core_->draining.load() ||
               core_->open_connections.load() >= core_->options.limits.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // over the cap: refuse early, before any buffer is allocated
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

  std::shared_ptr<ServerCore> core_;
  net::ip::tcp::acceptor acceptor_;
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
