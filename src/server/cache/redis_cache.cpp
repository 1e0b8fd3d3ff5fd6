// See redis_cache.h. hiredis's blocking API with SO_RCVTIMEO/SO_SNDTIMEO (redisSetTimeout) and
// a connect timeout bounds every call; a failed connection is never reused (hiredis marks its
// context unusable after an I/O error). Owner: the "cache" thread.
#include "server/cache/redis_cache.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "core/error.h"

namespace autoglm::server::cache {

struct RedisCache::Connection {
  explicit Connection(redisContext* c, uint64_t gen) : context(c), generation(gen) {}
  ~Connection() { redisFree(context); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  redisContext* context;
  uint64_t generation;  // connections older than the last failure are dropped, not reused
};

namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

RedisOptions parse_redis_address(const std::string& address) {
  RedisOptions options;
  const size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 6379;
  if (colon != std::string::npos) {
    const std::string digits = address.substr(colon + 1);
    port = 0;
    for (char c : digits)
      port = (c >= '0' && c <= '9' && port < 65536) ? port * 10 + (c - '0') : -1;
    if (digits.empty() || port <= 0 || port > 65535) port = -1;
  }
  if (host.empty() || port < 0) {
    fail(ErrorCode::kInvalidArgument,
         "cache_redis must be host:port (e.g. 127.0.0.1:6379), not '" + address + "'");
  }
  options.host = host;
  options.port = port;
  return options;
}

RedisCache::RedisCache(RedisOptions options, CacheKeyRing keys, EventSink on_event)
    : options_(std::move(options)), keys_(std::move(keys)), on_event_(std::move(on_event)) {
  // hiredis writes with write(2): a Redis that closed the connection would raise SIGPIPE and
  // kill the server. A server has no use for SIGPIPE (Asio sends with MSG_NOSIGNAL anyway).
  std::signal(SIGPIPE, SIG_IGN);
  worker_ = std::thread([this] { worker_loop(); });
}

RedisCache::~RedisCache() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

std::unique_ptr<RedisCache::Connection> RedisCache::connect() {
  redisContext* context =
      redisConnectWithTimeout(options_.host.c_str(), options_.port, to_timeval(options_.timeout));
  if (context == nullptr) return nullptr;
  if (context->err != 0 || redisSetTimeout(context, to_timeval(options_.timeout)) != REDIS_OK) {
    redisFree(context);
    return nullptr;
  }
  // A frozen Redis still completes TCP handshakes (the kernel's accept queue): only an answered
  // PING shows it is serving, so the backoff keeps growing while it is not.
  Reply pong(static_cast<redisReply*>(redisCommand(context, "PING")));
  if (!pong || pong->type != REDIS_REPLY_STATUS) {
    redisFree(context);
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return std::make_unique<Connection>(context, generation_);
}

std::unique_ptr<RedisCache::Connection> RedisCache::take_idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.empty()) return nullptr;
  std::unique_ptr<Connection> connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void RedisCache::give_back(std::unique_ptr<Connection> connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection->generation != generation_) {
    --open_connections_;  // opened before a failure: maybe broken too
    wake_.notify_all();
    return;  // closed here: closing a socket does not block
  }
  idle_.push_back(std::move(connection));
}

void RedisCache::note_failure(std::string_view what) {
  errors_.fetch_add(1);
  std::vector<std::unique_ptr<Connection>> dropped;
  bool report = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Every pooled connection may be as broken as this one (a hung or restarted Redis): drop
    // them all rather than let each cost a caller one timeout.
    ++generation_;
    open_connections_ -= static_cast<int>(idle_.size());
    dropped = std::move(idle_);
    idle_.clear();
    available_.store(false);
    backoff_ =
        backoff_.count() == 0 ? options_.min_backoff : std::min(backoff_ * 2, options_.max_backoff);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    report = !down_reported_;
    down_reported_ = true;
  }
  wake_.notify_all();
  if (report && on_event_) on_event_("response cache: Redis unavailable, bypassing L2", what);
}

void RedisCache::note_success() {
  bool report = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    backoff_ = std::chrono::milliseconds(0);
    report = down_reported_;
    down_reported_ = false;
  }
  if (report && on_event_) on_event_("response cache: Redis available again", "");
}

RedisCache::Result RedisCache::get(const std::string& key) {
  std::unique_ptr<Connection> connection = take_idle();
  if (!connection) {
    bypasses_.fetch_add(1);
    return {Outcome::kBypass, {}};
  }
  const std::string redis_key = options_.key_prefix + key;
  Reply reply(static_cast<redisReply*>(
      redisCommand(connection->context, "GET %b", redis_key.data(), redis_key.size())));
  if (!reply) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --open_connections_;
    }
    connection.reset();
    note_failure("GET failed or timed out");
    return {Outcome::kError, {}};
  }
  give_back(std::move(connection));
  if (reply->type == REDIS_REPLY_NIL) return {Outcome::kMiss, {}};
  if (reply->type != REDIS_REPLY_STRING) {
    errors_.fetch_add(1);
    return {Outcome::kError, {}};
  }
  std::optional<std::string> plaintext =
      open_value(keys_, std::string_view(reply->str, reply->len), key);
  if (!plaintext) {
    errors_.fetch_add(1);  // tampered, or sealed with a key no longer listed: treat as a miss
    return {Outcome::kError, {}};
  }
  return {Outcome::kHit, std::move(*plaintext)};
}

void RedisCache::put(const std::string& key, std::string_view plaintext) {
  if (!available_.load()) {
    bypasses_.fetch_add(1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (writes_queue_.size() >= options_.max_pending_writes) {
      bypasses_.fetch_add(1);
      return;
    }
    writes_queue_.push_back(Write{key, std::string(plaintext)});
  }
  wake_.notify_all();
}

bool RedisCache::refill_pool(std::unique_ptr<Connection>& writer) {
  if (!writer) {
    writer = connect();
    if (!writer) {
      note_failure("connect failed or timed out");
      return false;
    }
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (open_connections_ >= options_.pool_size || stop_) break;
    }
    std::unique_ptr<Connection> connection = connect();
    if (!connection) {
      note_failure("connect failed or timed out");
      return false;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(connection));
    ++open_connections_;
    available_.store(true);
  }
  note_success();
  return true;
}

bool RedisCache::write_one(Connection& writer, const Write& write) {
  const std::string sealed = seal_value(keys_, write.plaintext, write.key);
  const std::string redis_key = options_.key_prefix + write.key;
  const auto ttl_ms = static_cast<long long>(std::max<int64_t>(1, options_.ttl.count()));
  Reply reply(static_cast<redisReply*>(redisCommand(writer.context, "SET %b %b PX %lld",
                                                    redis_key.data(), redis_key.size(),
                                                    sealed.data(), sealed.size(), ttl_ms)));
  if (!reply) return false;
  if (reply->type == REDIS_REPLY_STATUS) {
    writes_.fetch_add(1);
  } else {
    errors_.fetch_add(1);  // e.g. OOM under maxmemory: the connection itself is fine
  }
  return true;
}

void RedisCache::worker_loop() {
  std::unique_ptr<Connection> writer;  // the worker's own connection, for SETs
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto pool_short = [&] {
      return !writer || writer->generation != generation_ || open_connections_ < options_.pool_size;
    };
    for (;;) {
      if (stop_) return;
      if (pool_short() && std::chrono::steady_clock::now() >= retry_at_) break;
      if (!writes_queue_.empty()) break;
      if (pool_short()) {
        wake_.wait_until(lock, retry_at_);
      } else {
        wake_.wait(lock);
      }
    }
    if (writer && writer->generation != generation_) writer.reset();
    if (pool_short() && std::chrono::steady_clock::now() >= retry_at_) {
      lock.unlock();
      refill_pool(writer);
      continue;
    }
    Write write = std::move(writes_queue_.front());
    writes_queue_.pop_front();
    lock.unlock();
    if (!writer) {
      bypasses_.fetch_add(1);  // Redis is down (backing off): drop the write
      continue;
    }
    if (!write_one(*writer, write)) {
      writer.reset();
      note_failure("SET failed or timed out");
    }
  }
}

}  // namespace autoglm::server::cache
