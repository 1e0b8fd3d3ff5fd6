// The Beast/Asio HTTP/1.1 client of `autoglm bench serve`; see http_client.h. Each exchange
// is a chain of completion handlers on the caller's io_context (connect, TLS handshake,
// write, read header, read body piece by piece), kept alive by a shared_ptr to itself.
// Thread ownership: see http_client.h.
#include "http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace autoglm::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  asio::io_context& io;
  ServerAddress address;
  HttpClientOptions options;
  tcp::resolver::results_type endpoints;
  std::unique_ptr<asio::ssl::context> tls;  // set for https
};

namespace {

// A non-200 body (or a GET body) is kept up to this size for the error message or caller.
constexpr size_t kMaxCollectedBody = 16u << 20;
constexpr size_t kReadPieceBytes = 16u << 10;

template <class Stream>
class Exchange : public std::enable_shared_from_this<Exchange<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Exchange(HttpClient::Impl& client, HttpExchange exchange)
      : client_(client), exchange_(std::move(exchange)), stream_(make_stream(client)) {}

  void run() {
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(client_.options.timeout_s));
    lowest().expires_at(deadline_);
    lowest().async_connect(client_.endpoints, [self = this->shared_from_this()](
                                                  beast::error_code ec, const tcp::endpoint&) {
      self->on_connect(ec);
    });
  }

 private:
  static Stream make_stream(HttpClient::Impl& client) {
    if constexpr (kTls) {
      return Stream(client.io, *client.tls);
    } else {
      return Stream(client.io);
    }
  }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void on_connect(beast::error_code ec) {
    if (ec) return finish("connect: " + describe(ec));
    if constexpr (kTls) {
      const std::string& host = client_.address.host;
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), host.c_str())) {
        return finish("TLS: cannot set the server name");
      }
      if (!client_.options.insecure) {
        stream_.set_verify_callback(asio::ssl::host_name_verification(host));
      }
      lowest().expires_at(deadline_);
      stream_.async_handshake(asio::ssl::stream_base::client,
                              [self = this->shared_from_this()](beast::error_code hec) {
                                if (hec)
                                  return self->finish("TLS handshake: " + self->describe(hec));
                                self->send();
                              });
    } else {
      send();
    }
  }

  void send() {
    const ServerAddress& a = client_.address;
    request_.method_string(exchange_.method);
    request_.target(a.base_path + exchange_.target);
    request_.version(11);
    const bool default_port = a.port == (a.tls ? "443" : "80");
    request_.set(http::field::host, default_port ? a.host : a.host + ":" + a.port);
    request_.set(http::field::user_agent, "autoglm-bench-serve");
    request_.set(http::field::accept, "application/json, text/event-stream");
    if (!client_.options.api_key.empty()) {
      request_.set(http::field::authorization, "Bearer " + client_.options.api_key);
    }
    if (!exchange_.body.empty()) {
      request_.set(http::field::content_type, "application/json");
      request_.body() = std::move(exchange_.body);
    }
    request_.prepare_payload();
    lowest().expires_at(deadline_);
    http::async_write(stream_, request_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->finish("sending the request: " + self->describe(ec));
                        self->read_header();
                      });
  }

  void read_header() {
    // Streams are long; collected bodies are capped below. Not boost::none: Beast 1.74
    // compares a content length with an empty optional as "greater" and refuses the body.
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest().expires_at(deadline_);
    http::async_read_header(stream_, buffer_, parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (ec)
                                return self->finish("reading the response: " + self->describe(ec));
                              self->status_ = static_cast<int>(self->parser_.get().result_int());
                              self->read_body();
                            });
  }

  void read_body() {
    if (parser_.is_done()) return finish({});
    auto& body = parser_.get().body();
    body.data = piece_.data();
    body.size = piece_.size();
    body.more = true;
    lowest().expires_at(deadline_);
    // read_some, not read: a streamed body must be handed on as soon as bytes arrive.
    http::async_read_some(stream_, buffer_, parser_,
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            self->on_body_read(ec);
                          });
  }

  void on_body_read(beast::error_code ec) {
    const Clock::time_point arrived = Clock::now();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return finish("reading the response body: " + describe(ec));
    const size_t got = piece_.size() - parser_.get().body().size;
    if (got > 0) {
      const std::string_view bytes(piece_.data(), got);
      if (status_ == 200 && exchange_.on_body) {
        if (!exchange_.on_body(bytes, arrived)) return finish({});
      } else if (collected_.size() < kMaxCollectedBody) {
        collected_.append(bytes.substr(0, kMaxCollectedBody - collected_.size()));
      }
    }
    read_body();
  }

  std::string describe(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) {
      char seconds[32];
      std::snprintf(seconds, sizeof(seconds), "%g", client_.options.timeout_s);
      return std::string("timed out after ") + seconds + " s (--timeout)";
    }
    return ec.message();
  }

  void finish(std::string error) {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
    HttpResult result;
    result.status = status_;
    result.finished = Clock::now();
    if (error.empty() && status_ != 200) {
      constexpr size_t kShown = 500;
      error = "HTTP " + std::to_string(status_) + ": " + collected_.substr(0, kShown);
    }
    result.error = std::move(error);
    result.body = std::move(collected_);
    if (exchange_.on_complete) exchange_.on_complete(std::move(result));
  }

  HttpClient::Impl& client_;
  HttpExchange exchange_;
  Stream stream_;
  Clock::time_point deadline_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response_parser<http::buffer_body> parser_;
  std::vector<char> piece_ = std::vector<char>(kReadPieceBytes);
  std::string collected_;
  int status_ = 0;
};

}  // namespace

HttpClient::HttpClient(asio::io_context& io, ServerAddress address, HttpClientOptions options)
    : impl_(new Impl{io, std::move(address), std::move(options), {}, nullptr}) {
  tcp::resolver resolver(io);
  beast::error_code ec;
  impl_->endpoints = resolver.resolve(impl_->address.host, impl_->address.port, ec);
  if (ec) {
    fail(ErrorCode::kInvalidArgument,
         "cannot resolve " + impl_->address.host + ":" + impl_->address.port + ": " + ec.message());
  }
  if (impl_->address.tls) {
    impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (impl_->options.insecure) {
      impl_->tls->set_verify_mode(asio::ssl::verify_none);
    } else {
      impl_->tls->set_default_verify_paths();
      impl_->tls->set_verify_mode(asio::ssl::verify_peer);
    }
  }
}

HttpClient::~HttpClient() = default;

void HttpClient::start(HttpExchange exchange) {
  if (impl_->address.tls) {
    using TlsStream = beast::ssl_stream<beast::tcp_stream>;
    std::make_shared<Exchange<TlsStream>>(*impl_, std::move(exchange))->run();
  } else {
    std::make_shared<Exchange<beast::tcp_stream>>(*impl_, std::move(exchange))->run();
  }
}

HttpResult HttpClient::fetch(const ServerAddress& address, const HttpClientOptions& options,
                             HttpExchange exchange) {
  asio::io_context io;
  HttpClient client(io, address, options);
  HttpResult result;
  exchange.on_complete = [&result](HttpResult&& r) { result = std::move(r); };
  client.start(std::move(exchange));
  io.run();
  return result;
}

}  // namespace autoglm::bench
