// Unit tests of security::RateLimiter's bucket math with a hand-moved clock: burst, refill,
// reset and retry-after seconds, an overdrawn token balance, limit changes, the eviction bound,
// and exact accounting under concurrent callers. Thread ownership: test threads only.
#include "security/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace autoglm::security {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand, shared with the limiter.
struct ManualClock {
  std::shared_ptr<std::chrono::steady_clock::time_point> now =
      std::make_shared<std::chrono::steady_clock::time_point>();
  RateLimiter::Clock clock() const {
    return [now = now] { return *now; };
  }
  void advance(std::chrono::milliseconds by) { *now += by; }
};

RateLimits rpm(int64_t n) {
  return {n, 0};
}
RateLimits tpm(int64_t n) {
  return {0, n};
}

TEST(RateLimiter, FreshKeyGetsTheWholeMinuteAsBurstThenWaits) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  for (int64_t expected_remaining : {2, 1, 0}) {
    RateDecision d = limiter.try_acquire_request("k", rpm(3));
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 3);
    EXPECT_EQ(d.remaining, expected_remaining);
    EXPECT_DOUBLE_EQ(d.retry_after_seconds, 0);
  }
  RateDecision refused = limiter.try_acquire_request("k", rpm(3));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_NEAR(refused.retry_after_seconds, 20.0, 1e-9);  // one request per 20 s
  EXPECT_NEAR(refused.reset_seconds, 60.0, 1e-9);        // three to refill
}

TEST(RateLimiter, RefillsContinuouslyAndNeverBeyondTheLimit) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire_request("k", rpm(3)).allowed);
  clock.advance(10s);
  RateDecision half = limiter.try_acquire_request("k", rpm(3));
  EXPECT_FALSE(half.allowed);
  EXPECT_NEAR(half.retry_after_seconds, 10.0, 1e-9);
  EXPECT_NEAR(half.reset_seconds, 50.0, 1e-9);
  clock.advance(10s);
  EXPECT_TRUE(limiter.try_acquire_request("k", rpm(3)).allowed);
  clock.advance(1h);
  RateDecision after_idle = limiter.try_acquire_request("k", rpm(3));
  EXPECT_TRUE(after_idle.allowed);
  EXPECT_EQ(after_idle.remaining, 2);  // capped at the limit, not an hour's worth
}

TEST(RateLimiter, KeysHaveSeparateBuckets) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  ASSERT_TRUE(limiter.try_acquire_request("a", rpm(1)).allowed);
  EXPECT_FALSE(limiter.try_acquire_request("a", rpm(1)).allowed);
  EXPECT_TRUE(limiter.try_acquire_request("b", rpm(1)).allowed);
}

TEST(RateLimiter, ZeroLimitIsUnlimitedAndTracksNothing) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  for (int i = 0; i < 100; ++i) {
    RateDecision d = limiter.try_acquire_request("k", {});
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 0);
  }
  EXPECT_TRUE(limiter.check_tokens("k", {}).allowed);
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST(RateLimiter, LargeChargeOverdrawsTheTokenBucketAndLaterRequestsWait) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  RateDecision first = limiter.check_tokens("k", tpm(600));  // 10 tokens per second
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 600);
  EXPECT_EQ(limiter.check_tokens("k", tpm(600)).remaining, 600);  // checking takes nothing
  limiter.charge_tokens("k", 1500);                               // balance -900
  RateDecision overdrawn = limiter.check_tokens("k", tpm(600));
  EXPECT_FALSE(overdrawn.allowed);
  EXPECT_EQ(overdrawn.remaining, 0);
  EXPECT_NEAR(overdrawn.retry_after_seconds, 90.1, 1e-9);  // back to +1 token
  EXPECT_NEAR(overdrawn.reset_seconds, 150.0, 1e-9);       // back to 600
  clock.advance(90s);                                      // balance exactly 0: still empty
  EXPECT_FALSE(limiter.check_tokens("k", tpm(600)).allowed);
  clock.advance(1s);
  RateDecision refilled = limiter.check_tokens("k", tpm(600));
  EXPECT_TRUE(refilled.allowed);
  EXPECT_EQ(refilled.remaining, 10);
}

TEST(RateLimiter, ChargeForAnUnknownKeyIsDropped) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  limiter.charge_tokens("never-checked", 1000);
  EXPECT_EQ(limiter.tracked_keys(), 0u);
  EXPECT_EQ(limiter.check_tokens("never-checked", tpm(100)).remaining, 100);
}

TEST(RateLimiter, ChangedLimitKeepsWhatWasUsed) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire_request("k", rpm(3)).allowed);
  RateDecision raised = limiter.try_acquire_request("k", rpm(10));  // 3 used of 10
  EXPECT_TRUE(raised.allowed);
  EXPECT_EQ(raised.limit, 10);
  EXPECT_EQ(raised.remaining, 6);
  RateDecision lowered = limiter.try_acquire_request("k", rpm(2));  // 4 used of 2
  EXPECT_FALSE(lowered.allowed);
  EXPECT_EQ(lowered.limit, 2);
  EXPECT_NEAR(lowered.retry_after_seconds, 90.0, 1e-9);  // from -2 to +1 at 1 per 30 s
}

TEST(RateLimiter, PeekTakesNothing) {
  ManualClock clock;
  RateLimiter limiter({}, clock.clock());
  EXPECT_EQ(limiter.peek_request("k", rpm(5)).remaining, 5);
  EXPECT_EQ(limiter.peek_request("k", rpm(5)).remaining, 5);
  EXPECT_EQ(limiter.try_acquire_request("k", rpm(5)).remaining, 4);
}

TEST(RateLimiter, TrackedKeysStayWithinTheCap) {
  ManualClock clock;
  RateLimiter limiter({.max_keys = 8, .shards = 2}, clock.clock());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(limiter.try_acquire_request("key-" + std::to_string(i), rpm(5)).allowed);
    ASSERT_LE(limiter.tracked_keys(), 8u);
  }
}

TEST(RateLimiter, EvictsTheLongestIdleFullBucketBeforeAnyBusyOne) {
  ManualClock clock;
  RateLimiter limiter({.max_keys = 4, .shards = 1}, clock.clock());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire_request("busy", rpm(3)).allowed);
  for (const char* key : {"b", "c", "d"})
    ASSERT_TRUE(limiter.try_acquire_request(key, rpm(3)).allowed);
  clock.advance(30s);  // b, c, d are full again; "busy" (the longest idle) has 1.5 of 3
  ASSERT_TRUE(limiter.try_acquire_request("e", rpm(3)).allowed);
  EXPECT_EQ(limiter.tracked_keys(), 4u);
  // "busy" kept its state (a fresh bucket would leave 2): it was not the one evicted.
  EXPECT_EQ(limiter.try_acquire_request("busy", rpm(3)).remaining, 0);
}

TEST(RateLimiter, WithNoFullBucketTheLongestIdleKeyGoes) {
  ManualClock clock;
  RateLimiter limiter({.max_keys = 2, .shards = 1}, clock.clock());
  for (const char* key : {"old", "new"}) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire_request(key, rpm(3)).allowed);
  }
  ASSERT_TRUE(limiter.try_acquire_request("third", rpm(3)).allowed);
  EXPECT_FALSE(limiter.try_acquire_request("new", rpm(3)).allowed);  // kept: still empty
  EXPECT_EQ(limiter.tracked_keys(), 2u);
}

TEST(RateLimiter, ConcurrentCallersShareOneBucketExactly) {
  ManualClock clock;  // never moves: no refill during the test
  RateLimiter limiter({.max_keys = 64, .shards = 4}, clock.clock());
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (limiter.try_acquire_request("shared", rpm(1000)).allowed) ++allowed;
        limiter.try_acquire_request("own-" + std::to_string(i % 16), rpm(1000));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(RateLimiter, ResetDurationsUseOpenAiForm) {
  EXPECT_EQ(format_reset_duration(0), "0s");
  EXPECT_EQ(format_reset_duration(-3), "0s");
  EXPECT_EQ(format_reset_duration(0.25), "250ms");
  EXPECT_EQ(format_reset_duration(20), "20s");
  EXPECT_EQ(format_reset_duration(20.5), "20.5s");
  EXPECT_EQ(format_reset_duration(60), "1m0s");
  EXPECT_EQ(format_reset_duration(90.1), "1m30.1s");
}

}  // namespace
}  // namespace autoglm::security
