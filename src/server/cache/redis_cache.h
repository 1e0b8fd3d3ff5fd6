// L2 of the response cache: Redis through hiredis (Debian libhiredis-dev), shared by replicas.
// Values are sealed with AES-256-GCM (cache_crypto.h) under the cache key as AAD and stored
// with a TTL (SET key value PX ttl). Every connect and every command has a bounded timeout;
// when Redis is down or slow the cache is bypassed and serving goes on (BAD_INPUTS 36).
// Design, so that no caller ever waits longer than the timeout:
// - get() runs on the caller's (I/O) thread with an idle pooled connection and one command
//   under the timeout. No idle connection (Redis down, reconnecting, or all busy): bypass at
//   once, without touching the network.
// - A worker thread owns every connect (TCP, then a PING: a frozen Redis still accepts TCP;
//   backoff 100 ms doubling to 5 s while Redis is down) and every write (a bounded queue;
//   full: the write is dropped and counted as a bypass).
// Thread ownership: every public member is safe from any thread. Owner: the "cache" thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "server/cache/cache_crypto.h"

struct redisContext;

namespace autoglm::server::cache {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{50};  // connect, and each command
  std::chrono::milliseconds ttl{3'600'000};
  int pool_size = 4;                 // connections kept for get(); one more for writes
  size_t max_pending_writes = 1024;  // queued SETs beyond this are dropped
  std::string key_prefix = "autoglm:response-cache:";
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5'000};
};

// "host:port" (host may be a name, an IPv4 address or [IPv6]); throws Error(kInvalidArgument).
RedisOptions parse_redis_address(const std::string& address);

class RedisCache {
 public:
  enum class Outcome { kHit, kMiss, kBypass, kError };
  struct Result {
    Outcome outcome = Outcome::kBypass;
    std::string value;  // the opened plaintext on kHit
  };
  using EventSink = std::function<void(std::string_view message, std::string_view detail)>;

  RedisCache(RedisOptions options, CacheKeyRing keys, EventSink on_event = {});
  ~RedisCache();  // stops the worker; queued writes not yet sent are dropped
  RedisCache(const RedisCache&) = delete;
  RedisCache& operator=(const RedisCache&) = delete;

  // `key` is the cache key's hex; it is also the AAD the value was sealed with. A value that
  // does not open (tampered, or a kid no longer listed) is an error and reads as a miss.
  Result get(const std::string& key);
  // Queues the sealed write; never blocks on Redis.
  void put(const std::string& key, std::string_view plaintext);

  bool available() const { return available_.load(); }    // a connection is pooled
  uint64_t errors() const { return errors_.load(); }      // failed commands/connects/opens
  uint64_t bypasses() const { return bypasses_.load(); }  // reads/writes skipped: unavailable
  uint64_t writes() const { return writes_.load(); }      // SETs Redis acknowledged

 private:
  struct Write {
    std::string key;
    std::string plaintext;  // sealed on the worker, off the engine thread
  };
  struct Connection;
  void worker_loop();
  // Connects the writer and up to pool_size pooled connections; false on a failure.
  bool refill_pool(std::unique_ptr<Connection>& writer);
  bool write_one(Connection& writer, const Write& write);  // false: the connection broke
  void note_failure(std::string_view what);
  void note_success();
  std::unique_ptr<Connection> take_idle();
  void give_back(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> connect();

  const RedisOptions options_;
  const CacheKeyRing keys_;
  const EventSink on_event_;

  std::mutex mutex_;  // guards everything below, up to the atomics
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_connections_ = 0;  // idle + lent out (the writer's is separate)
  std::deque<Write> writes_queue_;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point retry_at_{};
  uint64_t generation_ = 0;  // bumped on each failure; older connections are not reused
  bool down_reported_ = false;
  bool stop_ = false;

  std::atomic<bool> available_{false};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> bypasses_{0};
  std::atomic<uint64_t> writes_{0};
  std::thread worker_;  // last: starts after every member above exists
};

}  // namespace autoglm::server::cache
