// Brute-force protection: a token bucket per client IP that only authentication failures
// drain. While an IP's bucket is empty its requests are answered 429 before any credential is
// looked at, so guessing keys or forging tokens costs at most `failures_per_minute` tries a
// minute. Successful requests are never slowed down.
// Thread ownership: safe from any thread (one mutex; the work under it is a hash lookup).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace autoglm::security {

class AuthFailureLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `failures_per_minute` is both the burst and the refill per minute; `max_tracked_ips`
  // bounds memory under a spray of source addresses (full buckets are dropped first, then
  // the whole table, which only ever forgives).
  explicit AuthFailureLimiter(int64_t failures_per_minute, Clock clock = {},
                              size_t max_tracked_ips = 100'000);

  // How long `ip` must wait before its credentials are looked at again; nullopt when allowed.
  std::optional<std::chrono::seconds> blocked(std::string_view ip);

  // One failed authentication from `ip` (takes a token).
  void record_failure(std::string_view ip);

  size_t tracked_ips() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  Bucket& refill(std::string_view ip, std::chrono::steady_clock::time_point now);
  void evict(std::chrono::steady_clock::time_point now);

  const double capacity_;
  const double per_second_;
  const Clock clock_;
  const size_t max_tracked_ips_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace autoglm::security
