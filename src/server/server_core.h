// Internal to the HTTP layer: the state shared by the listener and every connection (options,
// router, admission, counters, the registry of live sessions for draining) and one request's
// exchange record. Not part of the server's public API.
// Thread ownership: ServerCore's atomics and mutex-guarded registry are safe from any thread;
// an Exchange's plain fields are touched only on its connection's strand, except its
// annotations (any thread, under their mutex).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <utility>  // before asio: Boost 1.74 needs std::exchange declared
// clang-format off
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
// clang-format on
#include <optional>

#include "server/http_server.h"

namespace autoglm::server {

// What a connection must offer to the drain logic (called on any thread; it posts to itself).
class SessionControl {
 public:
  virtual ~SessionControl() = default;
  virtual void close_if_idle() = 0;
  virtual void abort_exchange() = 0;
  virtual void close_now() = 0;
};

// One request and its answer.
struct Exchange {
  std::string request_id;
  std::string trace_id;
  std::string trace_flags = "01";
  std::string method;
  std::string path;
  std::string route = "unmatched";
  std::string client_ip;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int status = 0;
  bool streaming = false;
  bool ended = false;      // the whole answer is queued
  bool accounted = false;  // counted and access-logged (once)
  uint64_t bytes_sent = 0;
  std::atomic<bool> gone{false};  // the client went away before the end (any thread reads)
  std::function<void()> on_gone;

  // Handler-supplied access-log fields (Responder::annotate), from any thread.
  void annotate(std::string key, AnnotationValue value) {
    std::lock_guard lock(annotations_mutex_);
    for (auto& [name, existing] : annotations_) {
      if (name == key) {
        existing = std::move(value);
        return;
      }
    }
    annotations_.emplace_back(std::move(key), std::move(value));
  }
  std::vector<std::pair<std::string, AnnotationValue>> annotations() const {
    std::lock_guard lock(annotations_mutex_);
    return annotations_;
  }

 private:
  mutable std::mutex annotations_mutex_;
  std::vector<std::pair<std::string, AnnotationValue>> annotations_;
};

struct ServerCore {
  ServerCore(HttpServerOptions server_options, const Router& server_router,
             AdmissionCheck admission_check)
      : io_context(std::max(1, server_options.io_threads)),
        options(std::move(server_options)),
        router(server_router),
        admission(std::move(admission_check)) {}

  // Owned here so that it outlives every connection (they hold the core).
  boost::asio::io_context io_context;
  std::optional<boost::asio::ssl::context> tls_context;
  const HttpServerOptions options;
  const Router& router;
  const AdmissionCheck admission;
  HttpRequestCounters counters;
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> in_flight{0};
  // Over-the-cap connections being answered 503 (shared: a refusal must not hold the core).
  std::shared_ptr<std::atomic<int64_t>> refusing = std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<bool> draining{false};

  void register_session(SessionControl* key, std::weak_ptr<SessionControl> session) {
    std::lock_guard lock(sessions_mutex);
    sessions[key] = std::move(session);
  }
  void unregister_session(SessionControl* key) {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(key);
  }
  std::vector<std::shared_ptr<SessionControl>> live_sessions() {
    std::lock_guard lock(sessions_mutex);
    std::vector<std::shared_ptr<SessionControl>> live;
    for (auto& [key, weak] : sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
    return live;
  }

  std::mutex sessions_mutex;
  std::unordered_map<SessionControl*, std::weak_ptr<SessionControl>> sessions;
};

}  // namespace autoglm::server
