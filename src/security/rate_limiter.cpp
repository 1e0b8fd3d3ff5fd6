// The token buckets behind RateLimiter (see rate_limiter.h).
// Thread ownership: any thread; each shard's map and idle list are guarded by its mutex.
#include "security/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace autoglm::security {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

// Keys scanned from the idle end of a full shard for one whose buckets are full again; bounded
// so an insert stays O(1) even when every tracked key is busy.
constexpr size_t kEvictionScan = 32;

struct Bucket {
  int64_t limit = 0;  // per minute; 0: unlimited (the bucket is unused)
  double balance = 0;
  TimePoint refilled{};

  double per_second() const { return static_cast<double>(limit) / 60.0; }

  void refill(TimePoint now) {
    if (limit > 0 && now > refilled) {
      const double elapsed = std::chrono::duration<double>(now - refilled).count();
      balance = std::min(static_cast<double>(limit), balance + elapsed * per_second());
    }
    refilled = std::max(refilled, now);
  }

  // Applies the current limit: a new bucket starts full; a changed limit keeps what was used
  // (raising a limit grants the difference at once, lowering it takes it away).
  void apply_limit(int64_t new_limit, TimePoint now) {
    if (limit == 0) {
      limit = new_limit;
      balance = static_cast<double>(new_limit);
      refilled = now;
      return;
    }
    refill(now);
    if (new_limit != limit) {
      balance = std::min(static_cast<double>(new_limit),
                         balance + static_cast<double>(new_limit - limit));
      limit = new_limit;
    }
  }

  bool full(TimePoint now) {
    refill(now);
    return limit == 0 || balance >= static_cast<double>(limit);
  }

  // Seconds until the balance reaches `target` (0 when it already has).
  double seconds_until(double target) const {
    if (balance >= target || limit <= 0) return 0;
    return (target - balance) / per_second();
  }

  RateDecision decision(bool allowed, double needed) const {
    RateDecision d;
    d.allowed = allowed;
    d.limit = limit;
    d.remaining = balance > 0 ? static_cast<int64_t>(std::floor(balance)) : 0;
    d.reset_seconds = seconds_until(static_cast<double>(limit));
    d.retry_after_seconds = allowed ? 0 : seconds_until(needed);
    return d;
  }
};

}  // namespace

struct RateLimiter::Shard {
  struct Entry {
    Bucket requests;
    Bucket tokens;
    std::list<std::string>::iterator idle_position;
  };

  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
  std::list<std::string> by_use;  // front: most recently used; back: longest idle

  Entry* find(std::string_view key) {
    auto it = entries.find(std::string(key));
    if (it == entries.end()) return nullptr;
    by_use.splice(by_use.begin(), by_use, it->second.idle_position);
    return &it->second;
  }

  Entry& find_or_insert(std::string_view key, size_t capacity, TimePoint now) {
    if (Entry* entry = find(key)) return *entry;
    while (!entries.empty() && entries.size() >= capacity) evict_one(now);
    by_use.emplace_front(key);
    Entry& entry = entries[by_use.front()];
    entry.idle_position = by_use.begin();
    return entry;
  }

  // Forgets the longest-idle key whose buckets are full (nothing lost), else the longest-idle
  // key (its caller gets a fresh, full bucket: memory stays bounded in the caller's favour).
  void evict_one(TimePoint now) {
    auto victim = std::prev(by_use.end());
    size_t scanned = 0;
    for (auto it = by_use.rbegin(); it != by_use.rend() && scanned < kEvictionScan;
         ++it, ++scanned) {
      Entry& entry = entries.at(*it);
      if (entry.requests.full(now) && entry.tokens.full(now)) {
        victim = std::prev(it.base());
        break;
      }
    }
    entries.erase(*victim);
    by_use.erase(victim);
  }
};

RateLimiter::RateLimiter(Options options, Clock clock)
    : options_(options), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
  options_.shards = std::max<size_t>(1, std::min(options_.shards, options_.max_keys));
  keys_per_shard_ = std::max<size_t>(1, options_.max_keys / options_.shards);
  for (size_t i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Shard& RateLimiter::shard_for(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

RateDecision RateLimiter::request_decision(std::string_view key, const RateLimits& limits,
                                           bool take) {
  if (limits.requests_per_minute <= 0) return {};
  const TimePoint now = clock_();
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  Bucket& bucket = shard.find_or_insert(key, keys_per_shard_, now).requests;
  bucket.apply_limit(limits.requests_per_minute, now);
  const bool allowed = bucket.balance >= 1.0;
  if (allowed && take) bucket.balance -= 1.0;
  return bucket.decision(allowed, 1.0);
}

RateDecision RateLimiter::try_acquire_request(std::string_view key, const RateLimits& limits) {
  return request_decision(key, limits, /*take=*/true);
}

RateDecision RateLimiter::peek_request(std::string_view key, const RateLimits& limits) {
  return request_decision(key, limits, /*take=*/false);
}

RateDecision RateLimiter::check_tokens(std::string_view key, const RateLimits& limits) {
  if (limits.tokens_per_minute <= 0) return {};
  const TimePoint now = clock_();
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  Bucket& bucket = shard.find_or_insert(key, keys_per_shard_, now).tokens;
  bucket.apply_limit(limits.tokens_per_minute, now);
  // An empty (or overdrawn) bucket refuses until at least one token has come back.
  return bucket.decision(bucket.balance > 0, 1.0);
}

void RateLimiter::charge_tokens(std::string_view key, int64_t tokens) {
  if (tokens <= 0) return;
  const TimePoint now = clock_();
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  Shard::Entry* entry = shard.find(key);
  if (entry == nullptr || entry->tokens.limit == 0) return;
  entry->tokens.refill(now);
  entry->tokens.balance -= static_cast<double>(tokens);
}

size_t RateLimiter::tracked_keys() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->entries.size();
  }
  return total;
}

std::string format_reset_duration(double seconds) {
  if (!(seconds > 0)) return "0s";
  const auto total_ms = static_cast<int64_t>(std::ceil(std::min(seconds, 1e9) * 1000.0));
  if (total_ms < 1000) return std::to_string(total_ms) + "ms";
  const int64_t minutes = total_ms / 60'000;
  const int64_t rest_ms = total_ms % 60'000;
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", static_cast<double>(rest_ms) / 1000.0);
  std::string secs = text;
  secs.erase(secs.find_last_not_of('0') + 1);  // "20.500" -> "20.5", "20.000" -> "20."
  if (secs.back() == '.') secs.pop_back();
  return (minutes > 0 ? std::to_string(minutes) + "m" : std::string()) + secs + "s";
}

}  // namespace autoglm::security
