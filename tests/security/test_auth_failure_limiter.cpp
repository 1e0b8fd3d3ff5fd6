// The per-IP auth-failure token bucket, driven by an injected clock (nothing sleeps).
#include <gtest/gtest.h>

#include "core/error.h"
#include "security/auth_failure_limiter.h"

namespace autoglm::security {
namespace {

using namespace std::chrono_literals;

struct FakeTime {
  std::chrono::steady_clock::time_point now{};
  AuthFailureLimiter::Clock clock() {
    return [this] { return now; };
  }
};

TEST(AuthFailureLimiter, AllowsTheBurstThenBlocks) {
  FakeTime time;
  AuthFailureLimiter limiter(10, time.clock());
  EXPECT_EQ(limiter.blocked("10.0.0.1"), std::nullopt);  // never failed
  for (int i = 0; i < 9; ++i) {
    limiter.record_failure("10.0.0.1");
    EXPECT_EQ(limiter.blocked("10.0.0.1"), std::nullopt) << i;
  }
  limiter.record_failure("10.0.0.1");
  ASSERT_TRUE(limiter.blocked("10.0.0.1").has_value());
  EXPECT_EQ(*limiter.blocked("10.0.0.1"), 6s);           // one token refills in 60/10 s
  EXPECT_EQ(limiter.blocked("10.0.0.2"), std::nullopt);  // other addresses are unaffected
}

TEST(AuthFailureLimiter, RefillsOverTime) {
  FakeTime time;
  AuthFailureLimiter limiter(10, time.clock());
  for (int i = 0; i < 10; ++i) limiter.record_failure("ip");
  time.now += 4s;
  EXPECT_EQ(*limiter.blocked("ip"), 2s);  // 4 s of 6 s refilled: 2 s left
  time.now += 2s;
  EXPECT_EQ(limiter.blocked("ip"), std::nullopt);
  limiter.record_failure("ip");
  EXPECT_TRUE(limiter.blocked("ip").has_value());  // exactly one token came back
  time.now += 10min;
  for (int i = 0; i < 9; ++i) limiter.record_failure("ip");
  EXPECT_EQ(limiter.blocked("ip"), std::nullopt);  // refill is capped at the burst
  limiter.record_failure("ip");
  EXPECT_TRUE(limiter.blocked("ip").has_value());
}

TEST(AuthFailureLimiter, RetryAfterIsAtLeastOneSecond) {
  FakeTime time;
  AuthFailureLimiter limiter(600, time.clock());  // 10 tokens/s: 0.1 s per token
  for (int i = 0; i < 600; ++i) limiter.record_failure("ip");
  EXPECT_EQ(*limiter.blocked("ip"), 1s);
}

TEST(AuthFailureLimiter, TableIsBoundedAndOnlyForgives) {
  FakeTime time;
  AuthFailureLimiter limiter(2, time.clock(), /*max_tracked_ips=*/4);
  for (int i = 0; i < 4; ++i) limiter.record_failure("ip" + std::to_string(i));
  EXPECT_EQ(limiter.tracked_ips(), 4u);
  time.now += 1h;  // every bucket full again: evictable
  limiter.record_failure("new");
  EXPECT_EQ(limiter.tracked_ips(), 1u);
  limiter.record_failure("new");
  EXPECT_TRUE(limiter.blocked("new").has_value());
  for (int i = 0; i < 10; ++i) limiter.record_failure("spray" + std::to_string(i));
  EXPECT_LE(limiter.tracked_ips(), 4u);
}

TEST(AuthFailureLimiter, RejectsAZeroRate) {
  EXPECT_THROW(AuthFailureLimiter(0), Error);
}

}  // namespace
}  // namespace autoglm::security
