// A small asynchronous HTTP/1.1 client (Boost.Beast over Asio; https through OpenSSL) for
// `autoglm bench serve`: many requests in flight on one io_context, never a thread per
// request. A 200 response body is handed over as it arrives, with the time it arrived, so
// that streamed tokens can be timed; any other response is collected for the error message.
// Beast stays out of this header to keep the rest of the benchmark quick to compile.
// Thread ownership: an HttpClient and its requests live on the thread(s) running the
// io_context it was made with; with a single such thread no locking is needed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "server_address.h"

namespace boost::asio {
class io_context;
}

namespace autoglm::bench {

using Clock = std::chrono::steady_clock;

struct HttpClientOptions {
  std::string api_key;       // sent as "Authorization: Bearer <key>" when not empty
  bool insecure = false;     // https: skip certificate and host name verification
  double timeout_s = 600.0;  // whole exchange, connection included
};

struct HttpResult {
  int status = 0;     // 0 when no response arrived
  std::string body;   // a non-200 body, or every body when no body handler was given
  std::string error;  // empty on a complete exchange with status 200
  Clock::time_point finished;
};

struct HttpExchange {
  std::string method = "GET";
  std::string target;  // appended to the base path, e.g. "/v1/completions"
  std::string body;    // sent as application/json when not empty
  // Called with each piece of a 200 response body and the time it was read. Returning false
  // ends the exchange early (the stream said everything it had to say). May be empty.
  std::function<bool(std::string_view bytes, Clock::time_point arrived)> on_body;
  std::function<void(HttpResult&&)> on_complete;  // called exactly once
};

class HttpClient {
 public:
  // Resolves the host now (once, so that resolution is not timed with every request);
  // throws autoglm::Error(kInvalidArgument) when it cannot.
  HttpClient(boost::asio::io_context& io, ServerAddress address, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts one exchange on a fresh connection; returns at once.
  void start(HttpExchange exchange);

  // Runs one exchange to completion on a private io_context (for set-up requests such as
  // GET /v1/models). Only an unresolvable host throws; the result says what else happened.
  static HttpResult fetch(const ServerAddress& address, const HttpClientOptions& options,
                          HttpExchange exchange);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace autoglm::bench
