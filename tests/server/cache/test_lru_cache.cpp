// L1: byte accounting, least-recently-used eviction, oversized entries; and ResponseCache over
// L1 alone (store, hit, tenant separation, counters and metrics). Owner: the "cache" thread.
#include <gtest/gtest.h>

#include <thread>

#include "server/cache/response_cache.h"

namespace autoglm::server::cache {
namespace {

constexpr uint64_t kOverhead = LruCache::kEntryOverhead;

TEST(LruCache, ChargesKeyValueAndOverhead) {
  LruCache lru(10'000);
  EXPECT_TRUE(lru.put("k1", std::string(100, 'a')));
  EXPECT_EQ(lru.bytes(), 2 + 100 + kOverhead);
  EXPECT_TRUE(lru.put("k2", std::string(50, 'b')));
  EXPECT_EQ(lru.bytes(), (2 + 100 + kOverhead) + (2 + 50 + kOverhead));
  EXPECT_TRUE(lru.put("k1", std::string(10, 'c')));  // replacing re-charges
  EXPECT_EQ(lru.bytes(), (2 + 10 + kOverhead) + (2 + 50 + kOverhead));
  EXPECT_EQ(lru.entries(), 2u);
  EXPECT_EQ(*lru.get("k1"), std::string(10, 'c'));
  EXPECT_FALSE(lru.get("k3"));
}

TEST(LruCache, EvictsTheLeastRecentlyUsedToStayWithinBudget) {
  const uint64_t entry = 2 + 100 + kOverhead;
  LruCache lru(4 * entry);  // room for exactly four
  for (const char* key : {"k1", "k2", "k3", "k4"}) ASSERT_TRUE(lru.put(key, std::string(100, 'x')));
  EXPECT_EQ(lru.bytes(), 4 * entry);
  ASSERT_TRUE(lru.get("k1"));  // k2 is now the least recently used
  ASSERT_TRUE(lru.put("k5", std::string(100, 'x')));
  EXPECT_FALSE(lru.get("k2"));
  EXPECT_TRUE(lru.get("k1"));
  EXPECT_TRUE(lru.get("k5"));
  EXPECT_EQ(lru.entries(), 4u);
  EXPECT_EQ(lru.evictions(), 1u);
  EXPECT_LE(lru.bytes(), lru.capacity());
}

TEST(LruCache, RefusesAnEntryLargerThanAQuarterOfTheBudget) {
  LruCache lru(4000);
  ASSERT_TRUE(lru.put("small", "v"));
  EXPECT_FALSE(lru.put("big", std::string(1000, 'x')));
  EXPECT_FALSE(lru.get("big"));
  EXPECT_TRUE(lru.get("small"));  // nothing was flushed for it
  EXPECT_EQ(lru.evictions(), 0u);
}

TEST(LruCache, StaysConsistentUnderConcurrentUse) {
  LruCache lru(20'000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&lru, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string key = std::to_string((i * 7 + t) % 97);  // gcc 12 -Wrestrict on "k" + ..
        if (i % 3 == 0) {
          lru.put(key, std::string(static_cast<size_t>(i % 50), 'v'));
        } else {
          lru.get(key);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(lru.bytes(), lru.capacity());
  EXPECT_GE(lru.bytes(), lru.entries() * kOverhead);
}

GenerationRequest greedy(int32_t first_token) {
  GenerationRequest request;
  request.prompt_ids = {first_token, 2, 3};
  request.sampling.temperature = 0.0f;
  return request;
}

TEST(ResponseCacheL1, StoresHitsAndKeepsTenantsApart) {
  ResponseCache cache("tiny", "rev", 1 << 20, nullptr);
  const CacheKey alice = cache.key_for("alice", greedy(1));
  const CacheKey bob = cache.key_for("bob", greedy(1));
  EXPECT_FALSE(cache.lookup(alice));
  CachedAnswer answer;
  answer.text = "cached text";
  answer.token_ids = {5, 6};
  answer.finish = FinishCause::kStop;
  answer.completion_tokens = 2;
  cache.store(alice, answer);
  const std::optional<CacheHit> hit = cache.lookup(alice);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->level, CacheLevel::kL1);
  EXPECT_EQ(hit->answer.text, "cached text");
  EXPECT_FALSE(cache.lookup(bob));
  const ResponseCache::Counters counters = cache.counters();
  EXPECT_EQ(counters.l1_hits, 1u);
  EXPECT_EQ(counters.l1_misses, 2u);
  EXPECT_EQ(counters.stores, 1u);
  EXPECT_EQ(counters.l2_hits + counters.l2_misses + counters.l2_errors, 0u);
  const std::string text = cache.render_metrics("model_name=\"tiny\"");
  EXPECT_NE(text.find("autoglm:response_cache_hits_total{model_name=\"tiny\",level=\"l1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("autoglm:response_cache_misses_total{model_name=\"tiny\",level=\"l1\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("autoglm:response_cache_lookup_seconds_count{model_name=\"tiny\",level="
                      "\"l1\"} 3\n"),
            std::string::npos);
}

TEST(ResponseCacheL1, NeverStoresAFailedAnswer) {
  ResponseCache cache("tiny", "rev", 1 << 20, nullptr);
  const CacheKey key = cache.key_for("", greedy(1));
  CachedAnswer failed;
  failed.finish = FinishCause::kTimeout;
  cache.store(key, failed);
  EXPECT_FALSE(cache.lookup(key));
  EXPECT_EQ(cache.counters().stores, 0u);
}

}  // namespace
}  // namespace autoglm::server::cache
