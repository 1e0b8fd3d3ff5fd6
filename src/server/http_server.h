// The HTTP/1.1 server on Boost.Beast/Asio: a small pool of I/O threads runs one io_context;
// every connection is a chain of asynchronous operations on its own strand (never a thread per
// connection), plain TCP or native TLS 1.2/1.3 through OpenSSL. It enforces the limits below,
// answers each request through the Router (after an admission check that serve uses for
// loading/draining 503s), adds x-request-id and traceparent to every response, counts requests
// by route and status, and writes one JSON access-log line per request.
// Thread ownership: construct, start(), drain and stop() from one controlling thread (main);
// the I/O threads own the connections; counters and gauges may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_types.h"
#include "server/prometheus.h"
#include "server/router.h"

namespace autoglm::server {

struct HttpLimits {
  uint32_t max_header_bytes = 16 * 1024;  // request line + headers; beyond: 431
  uint64_t max_body_bytes = 8ull << 20;   // declared or chunked; beyond: 413, before buffering
  std::chrono::milliseconds header_timeout{10'000};  // a head: from accept, or from its 1st byte
  std::chrono::milliseconds body_timeout{30'000};    // reading a request body
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next 1st byte
  std::chrono::milliseconds write_timeout{30'000};   // each write (an SSE client not reading)
  uint64_t max_unsent_bytes = 1ull << 20;            // queued per connection; beyond: dropped
  int32_t max_connections = 1024;                    // beyond: 503 (plain) or closed (TLS)
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: an ephemeral port (see HttpServer::port())
  int32_t io_threads = 2;
  std::string tls_cert_file;  // both set: TLS only
  std::string tls_key_file;
  HttpLimits limits;
  bool log_request_bodies = false;  // debug log of each body, PII-masked, cut to 4 KB
  // Called on the I/O thread first, before admission and routing: sets request.principal, or
  // returns the refusal (401/403/429). Unset: no authentication (server/auth_middleware.h).
  std::function<std::optional<HttpResponse>(HttpRequest&)> authenticate;
};

// Called on the I/O thread before dispatch: a response to send instead of routing (e.g. 503
// while loading or draining), or nullopt to route normally.
using AdmissionCheck =
    std::function<std::optional<HttpResponse>(const HttpRequest&, std::string_view route_label)>;

struct ServerCore;  // shared by the listener and the connections (server_core.h)

class HttpServer {
 public:
  // `router` must outlive the server and not change after start().
  HttpServer(HttpServerOptions options, const Router& router, AdmissionCheck admission = {});
  ~HttpServer();  // stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads TLS material, binds and listens (throws autoglm::Error naming the cause), and starts
  // the I/O threads.
  void start();
  uint16_t port() const;  // the bound port, after start()
  bool tls() const;

  // Draining: stop accepting connections, close idle keep-alive connections, answer requests
  // that arrive on open connections with 503 + Connection: close.
  void begin_drain();
  // Blocks until no request is in flight, or `timeout` passes. True when idle.
  bool wait_until_idle(std::chrono::milliseconds timeout);
  // Ends every exchange still in flight: a stream gets a final error event and its chunked
  // end, a pending response gets 503; their on_disconnect callbacks run so work is cancelled.
  void abort_in_flight();
  // Closes every connection and joins the I/O threads. Idempotent.
  void stop();

  const HttpRequestCounters& request_counters() const;
  int64_t open_connections() const;
  int64_t requests_in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace autoglm::server
