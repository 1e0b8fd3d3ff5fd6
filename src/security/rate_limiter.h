// Per-caller rate limits by token bucket: for each key (an API key id, a JWT subject or a
// client IP) one bucket of requests per minute and one of tokens per minute. A bucket holds at
// most its per-minute limit (the burst) and refills continuously at limit/60 per second.
//   - Requests: try_acquire_request() takes one request or says how long to wait.
//   - Tokens: the cost of a request is known only after it ran, so check_tokens() admits while
//     the balance is positive and charge_tokens() subtracts prompt + completion tokens once the
//     usage is known; the balance may go negative, and later requests then wait for the refill.
// Memory is bounded: at most `max_keys` keys are tracked; beyond, the longest-idle key whose
// buckets have refilled to full is forgotten (it carries no state), else the longest-idle key.
// Thread ownership: safe from any thread; keys are spread over shards, each with its own mutex.
// The clock is injected so tests can move time by hand.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace autoglm::security {

// Per-minute limits for one key; 0 means unlimited.
struct RateLimits {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
};

// The answer for one bucket, with what the x-ratelimit-* headers and Retry-After need.
struct RateDecision {
  bool allowed = true;
  int64_t limit = 0;               // the per-minute limit (0: unlimited, nothing else applies)
  int64_t remaining = 0;           // whole units left after this decision (0 when negative)
  double reset_seconds = 0;        // until the bucket is full again
  double retry_after_seconds = 0;  // until a refused caller may be admitted (0 when allowed)
};

struct RateLimiterOptions {
  size_t max_keys = 100'000;  // tracked keys, in all shards together
  size_t shards = 16;
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Options = RateLimiterOptions;

  // `clock` defaults to std::chrono::steady_clock::now.
  explicit RateLimiter(Options options = {}, Clock clock = {});
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one request from the key's request bucket when limits.requests_per_minute > 0.
  RateDecision try_acquire_request(std::string_view key, const RateLimits& limits);
  // What try_acquire_request would answer now, taking nothing (for the headers of an answer
  // refused for another reason).
  RateDecision peek_request(std::string_view key, const RateLimits& limits);
  // Admits while the key's token balance is positive; takes nothing.
  RateDecision check_tokens(std::string_view key, const RateLimits& limits);
  // Subtracts `tokens` from the key's token bucket (created at the limit it was last checked
  // with; a key never checked is not charged). The balance may go below zero.
  void charge_tokens(std::string_view key, int64_t tokens);

  size_t tracked_keys() const;

 private:
  struct Shard;
  Shard& shard_for(std::string_view key);
  // The request bucket's answer; takes one request when allowed and `take`.
  RateDecision request_decision(std::string_view key, const RateLimits& limits, bool take);

  Options options_;
  Clock clock_;
  size_t keys_per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// "250ms", "20s", "1m30s": the duration form OpenAI uses in x-ratelimit-reset-* headers.
std::string format_reset_duration(double seconds);

}  // namespace autoglm::security
