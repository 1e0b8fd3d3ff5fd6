// The HTTP core against a real client socket on loopback: keep-alive, 404 with ids and
// traceparent echoed, 431 for oversized headers, 413 for a declared or chunked body over the
// limit, slowloris cut off by the header timeout (on a new and on a reused connection),
// chunked SSE streaming from another thread, a client that stops reading being dropped and one
// that leaves while its whole response is pending being noticed (on_disconnect runs in both),
// and a connection over the cap answered 503.
// Thread ownership: the test thread is the client; the server runs its own I/O threads.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "server/json_log.h"

namespace autoglm::server {
namespace {

// A blocking loopback client speaking raw bytes.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    timeval timeout{10, 0};  // a hung server fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~Client() { close(fd_); }
  void send_all(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }
  // Reads until `marker` has been seen, or the peer closes (then `closed` is set).
  std::string read_until(const std::string& marker) {
    while (buffer_.find(marker) == std::string::npos) {
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    std::string result = buffer_;
    size_t end = buffer_.find(marker);
    buffer_ = end == std::string::npos ? "" : buffer_.substr(end + marker.size());
    return end == std::string::npos ? result : result.substr(0, end + marker.size());
  }
  // One whole response with a Content-Length body.
  std::string read_response() {
    std::string head = read_until("\r\n\r\n");
    auto at = head.find("content-length: ");
    if (at == std::string::npos) at = head.find("Content-Length: ");
    if (at == std::string::npos) return head;
    size_t length = std::stoul(head.substr(at + 16));
    while (buffer_.size() < length) {
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    std::string body = buffer_.substr(0, length);
    buffer_ = buffer_.substr(std::min(length, buffer_.size()));
    return head + body;
  }
  bool wait_closed() {
    char chunk[4096];
    while (true) {
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }
  int fd() const { return fd_; }
  bool closed = false;

 private:
  int fd_;
  std::string buffer_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_json_logging("error");
    router_.add(
        "POST", "/echo",
        [](const HttpRequest& request, std::shared_ptr<Responder> responder) {
          responder->respond({200, "text/plain", {}, request.body});
        },
        "/echo");
    router_.add(
        "GET", "/stream",
        [this](const HttpRequest&, std::shared_ptr<Responder> responder) {
          responder->on_disconnect([this] { disconnected_.store(true); });
          responder->start_stream(200, {});
          // Events come from another thread, as the engine's callbacks do.
          std::thread([this, responder] {
            for (int i = 0; i < events_; ++i) {
              if (!responder->send_event("data: " + std::string(event_bytes_, 'x') + "\n\n")) {
                send_refused_.store(true);
                return;
              }
            }
            responder->send_event("data: [DONE]\n\n");
            responder->end_stream();
          }).detach();
        },
        "/stream");
    router_.add(
        "GET", "/hold",
        [this](const HttpRequest&, std::shared_ptr<Responder> responder) {
          responder->on_disconnect([this] { disconnected_.store(true); });
          std::lock_guard lock(held_mutex_);
          held_ = std::move(responder);  // answered never: like a long generation
        },
        "/hold");
  }
  void start(HttpLimits limits = {}) {
    HttpServerOptions options;
    options.port = 0;
    options.limits = limits;
    server_ = std::make_unique<HttpServer>(options, router_);
    server_->start();
  }
  void TearDown() override {
    release_held();
    if (server_) server_->stop();
  }
  bool holding() {
    std::lock_guard lock(held_mutex_);
    return held_ != nullptr;
  }
  void release_held() {
    std::lock_guard lock(held_mutex_);
    held_.reset();
  }
  bool wait_for(const std::atomic<bool>& flag) {
    for (int i = 0; i < 200 && !flag.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return flag.load();
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  int events_ = 3;
  size_t event_bytes_ = 4;
  std::atomic<bool> disconnected_{false};
  std::atomic<bool> send_refused_{false};
  std::mutex held_mutex_;
  std::shared_ptr<Responder> held_;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  Client client(server_->port());
  for (int i = 0; i < 3; ++i) {
    client.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    std::string response = client.read_response();
    EXPECT_NE(response.find("HTTP/1.1 200"), std::string::npos) << response;
    EXPECT_NE(response.find("hello"), std::string::npos);
    EXPECT_NE(response.find("x-request-id: req-"), std::string::npos) << response;
  }
  EXPECT_EQ(server_->open_connections(), 1);
}

TEST_F(HttpServerTest, UnknownRouteIs404WithTraceIdFromTraceparent) {
  start();
  Client client(server_->port());
  client.send_all(
      "GET /nope HTTP/1.1\r\nHost: x\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
  std::string response = client.read_response();
  EXPECT_NE(response.find("HTTP/1.1 404"), std::string::npos) << response;
  EXPECT_NE(response.find("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"), std::string::npos)
      << response;
  EXPECT_NE(response.find("\"error\""), std::string::npos);
}

TEST_F(HttpServerTest, OversizedHeadersGet431) {
  HttpLimits limits;
  limits.max_header_bytes = 2048;
  start(limits);
  Client client(server_->port());
  client.send_all("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  std::string response = client.read_response();
  EXPECT_NE(response.find("HTTP/1.1 431"), std::string::npos) << response;
  EXPECT_TRUE(client.wait_closed());
}

TEST_F(HttpServerTest, DeclaredBodyOverTheLimitGets413BeforeTheBodyIsSent) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  Client client(server_->port());
  // Only the head is sent: the answer must not wait for the (lying) 10 GB body.
  client.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n");
  std::string response = client.read_response();
  EXPECT_NE(response.find("HTTP/1.1 413"), std::string::npos) << response;
  EXPECT_NE(response.find("invalid_request_error"), std::string::npos) << response;
}

TEST_F(HttpServerTest, ManyTinyChunksOverTheLimitGet413) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  Client client(server_->port());
  std::string request = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3000; ++i) request += "1\r\na\r\n";
  client.send_all(request);
  std::string response = client.read_response();
  EXPECT_NE(response.find("HTTP/1.1 413"), std::string::npos) << response;
}

TEST_F(HttpServerTest, SlowlorisIsCutOffByTheHeaderTimeout) {
  HttpLimits limits;
  limits.header_timeout = std::chrono::milliseconds(300);
  start(limits);
  Client slow(server_->port());
  slow.send_all("GET /health HTTP/1.1\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  slow.send_all("X-A: 1\r\n");  // dripping, never finishing the head
  EXPECT_TRUE(slow.wait_closed());
  // Other clients are unaffected.
  Client other(server_->port());
  other.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_NE(other.read_response().find("HTTP/1.1 200"), std::string::npos);
}

TEST_F(HttpServerTest, StreamsChunkedEventsFromAnotherThread) {
  start();
  Client client(server_->port());
  client.send_all("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string text = client.read_until("0\r\n\r\n");
  EXPECT_NE(text.find("Transfer-Encoding: chunked"), std::string::npos) << text;
  EXPECT_NE(text.find("text/event-stream"), std::string::npos) << text;
  EXPECT_NE(text.find("data: xxxx\n\n"), std::string::npos) << text;
  EXPECT_NE(text.find("data: [DONE]\n\n"), std::string::npos) << text;
  EXPECT_FALSE(disconnected_.load());
}

TEST_F(HttpServerTest, ClientThatStopsReadingIsDroppedAndNotified) {
  HttpLimits limits;
  limits.max_unsent_bytes = 64 * 1024;
  limits.write_timeout = std::chrono::milliseconds(500);
  events_ = 100000;
  event_bytes_ = 1000;
  start(limits);
  Client client(server_->port());
  int small = 4096;
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  client.send_all("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  // Never read: the server's queue hits its bound or its write times out.
  for (int i = 0; i < 200 && !(disconnected_.load() && send_refused_.load()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(send_refused_.load());
  EXPECT_TRUE(disconnected_.load());
}

TEST_F(HttpServerTest, ClientLeavingWhileAWholeResponseIsPendingIsNoticed) {
  start();
  {
    Client client(server_->port());
    client.send_all("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 200 && !holding(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(holding());
    EXPECT_FALSE(disconnected_.load());
  }  // closed: nothing is ever written to it, so only a pending read can notice
  EXPECT_TRUE(wait_for(disconnected_));
}

TEST_F(HttpServerTest, SlowlorisOnAReusedConnectionGetsTheHeaderTimeout) {
  HttpLimits limits;
  limits.header_timeout = std::chrono::milliseconds(300);
  limits.idle_timeout = std::chrono::seconds(60);  // longer than the client's 10 s read timeout
  start(limits);
  Client client(server_->port());
  client.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_NE(client.read_response().find("HTTP/1.1 200"), std::string::npos);
  // An idle wait longer than the header timeout is fine before the next request's first byte.
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  client.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_NE(client.read_response().find("HTTP/1.1 200"), std::string::npos);
  client.send_all("POST /echo HTTP/1.1\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  client.send_all("X-A: 1\r\n");  // dripping, never finishing the head
  EXPECT_TRUE(client.wait_closed());
}

TEST_F(HttpServerTest, ConnectionOverTheCapGets503ThenClose) {
  HttpLimits limits;
  limits.max_connections = 1;
  start(limits);
  Client first(server_->port());
  first.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_NE(first.read_response().find("HTTP/1.1 200"), std::string::npos);  // accepted, open
  Client second(server_->port());
  second.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  std::string refusal = second.read_response();
  EXPECT_NE(refusal.find("HTTP/1.1 503"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("\"type\":\"service_unavailable_error\""), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("connection limit"), std::string::npos) << refusal;
  EXPECT_TRUE(second.wait_closed());
}

}  // namespace
}  // namespace autoglm::server
