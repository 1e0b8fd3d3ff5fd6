// See auth_failure_limiter.h. Thread ownership: any thread (mutex_).
#include "security/auth_failure_limiter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace autoglm::security {

AuthFailureLimiter::AuthFailureLimiter(int64_t failures_per_minute, Clock clock,
                                       size_t max_tracked_ips)
    : capacity_(static_cast<double>(failures_per_minute)),
      per_second_(static_cast<double>(failures_per_minute) / 60.0),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })),
      max_tracked_ips_(std::max<size_t>(1, max_tracked_ips)) {
  if (failures_per_minute < 1) {
    fail(ErrorCode::kInvalidArgument, "auth failures per minute must be at least 1");
  }
}

AuthFailureLimiter::Bucket& AuthFailureLimiter::refill(std::string_view ip,
                                                       std::chrono::steady_clock::time_point now) {
  auto [it, inserted] = buckets_.try_emplace(std::string(ip), Bucket{capacity_, now});
  Bucket& bucket = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(capacity_, bucket.tokens + std::max(0.0, elapsed) * per_second_);
    bucket.updated = now;
  }
  return bucket;
}

std::optional<std::chrono::seconds> AuthFailureLimiter::blocked(std::string_view ip) {
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(ip));
  if (it == buckets_.end()) return std::nullopt;  // never failed: nothing to look up
  const Bucket& bucket = refill(ip, clock_());
  if (bucket.tokens >= 1.0) return std::nullopt;
  // The epsilon keeps rounding noise (2.0000000001 s) from adding a whole second.
  const double wait_s = (1.0 - bucket.tokens) / per_second_;
  return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s - 1e-6))));
}

void AuthFailureLimiter::record_failure(std::string_view ip) {
  std::lock_guard lock(mutex_);
  const auto now = clock_();
  if (buckets_.size() >= max_tracked_ips_ && buckets_.find(std::string(ip)) == buckets_.end()) {
    evict(now);
  }
  Bucket& bucket = refill(ip, now);
  bucket.tokens = std::max(0.0, bucket.tokens - 1.0);
}

void AuthFailureLimiter::evict(std::chrono::steady_clock::time_point now) {
  // Buckets that have refilled completely carry no information: drop them first.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * per_second_ >= capacity_) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  if (buckets_.size() >= max_tracked_ips_) buckets_.clear();
}

size_t AuthFailureLimiter::tracked_ips() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace autoglm::security
