// AES-256-GCM sealing of L2 values: round trip, tamper and wrong-key detection, key rotation
// by kid, key file parsing; and RedisCache's bypass when nothing listens. Owner: the "cache"
// thread.
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "loopback_port.h"
#include "server/cache/cache_crypto.h"
#include "server/cache/redis_cache.h"

namespace autoglm::server::cache {
namespace {

const std::string kKeyA = "aa" + std::string(62, '1');
const std::string kKeyB = "bb" + std::string(62, '2');

TEST(CacheCrypto, RoundTripsAndHidesThePlaintext) {
  const CacheKeyRing ring = CacheKeyRing::parse("k1:" + kKeyA, "test");
  const std::string plaintext = "the cached answer, 2026";
  const std::string sealed = seal_value(ring, plaintext, "key-hex");
  EXPECT_EQ(sealed.size(), 1 + 2 + kNonceBytes + plaintext.size() + kTagBytes);
  EXPECT_EQ(sealed.substr(1, 2), "k1");
  EXPECT_EQ(sealed.find(plaintext), std::string::npos);
  EXPECT_EQ(open_value(ring, sealed, "key-hex"), plaintext);
  EXPECT_NE(seal_value(ring, plaintext, "key-hex"), sealed);  // a fresh nonce each time
  EXPECT_EQ(open_value(ring, seal_value(ring, "", "k"), "k"), "");
}

TEST(CacheCrypto, DetectsEveryTamperedByteAndAWrongAad) {
  const CacheKeyRing ring = CacheKeyRing::parse("k1:" + kKeyA, "test");
  const std::string sealed = seal_value(ring, "some answer", "key-a");
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_FALSE(open_value(ring, tampered, "key-a")) << "byte " << i;
  }
  EXPECT_FALSE(open_value(ring, sealed, "key-b"));  // moved to another key (tenant)
  EXPECT_FALSE(open_value(ring, sealed.substr(0, sealed.size() - 1), "key-a"));
  EXPECT_FALSE(open_value(ring, "", "key-a"));
  EXPECT_FALSE(open_value(ring, std::string(1, '\x40'), "key-a"));
}

TEST(CacheCrypto, RotationSealsWithTheNewestAndOpensWithAnyListedKey) {
  const CacheKeyRing old_ring = CacheKeyRing::parse("k1:" + kKeyA, "test");
  const CacheKeyRing rotated = CacheKeyRing::parse("k1:" + kKeyA + "\nk2:" + kKeyB + "\n", "test");
  const CacheKeyRing retired = CacheKeyRing::parse("# k1 retired\nk2:" + kKeyB, "test");
  const std::string old_value = seal_value(old_ring, "old", "aad");
  const std::string new_value = seal_value(rotated, "new", "aad");
  EXPECT_EQ(rotated.newest().id, "k2");
  EXPECT_EQ(new_value.substr(1, 2), "k2");
  EXPECT_EQ(open_value(rotated, old_value, "aad"), "old");
  EXPECT_EQ(open_value(rotated, new_value, "aad"), "new");
  EXPECT_FALSE(open_value(retired, old_value, "aad"));  // k1 no longer listed
  EXPECT_FALSE(open_value(old_ring, new_value, "aad"));
  // A same-named kid with different key material fails authentication.
  const CacheKeyRing impostor = CacheKeyRing::parse("k2:" + kKeyA, "test");
  EXPECT_FALSE(open_value(impostor, new_value, "aad"));
}

TEST(CacheCrypto, KeyRingRejectsMalformedEntriesWithoutEchoingKeys) {
  const auto message = [](const std::string& text) {
    try {
      CacheKeyRing::parse(text, "keyfile");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("").find("no cache key"), std::string::npos);
  EXPECT_NE(message("k1:" + kKeyA.substr(2)).find("64 hex digits"), std::string::npos);
  const std::string bad_hex = "k1:" + kKeyA.substr(1) + "g";
  EXPECT_EQ(message(bad_hex).find(kKeyA.substr(1)), std::string::npos);
  EXPECT_NE(message(bad_hex).find("keyfile entry 1"), std::string::npos);
  EXPECT_NE(message("k1:" + kKeyA + "\nk1:" + kKeyB).find("listed twice"), std::string::npos);
  EXPECT_NE(message("bad kid:" + kKeyA).find("kid"), std::string::npos);
  EXPECT_NE(message(kKeyA).find("kid"), std::string::npos);
  EXPECT_EQ(CacheKeyRing::parse("a:" + kKeyA + ",b:" + kKeyB, "env").size(), 2u);
}

TEST(RedisCache, BypassesWhenRedisIsDown) {
  RedisOptions options =
      parse_redis_address("127.0.0.1:" + std::to_string(test::unused_loopback_port()));
  options.timeout = std::chrono::milliseconds(50);
  RedisCache l2(options, CacheKeyRing::parse("k1:" + kKeyA, "test"));
  EXPECT_EQ(l2.get("abc").outcome, RedisCache::Outcome::kBypass);
  l2.put("abc", "value");
  EXPECT_GE(l2.bypasses(), 2u);
  EXPECT_FALSE(l2.available());
  for (int i = 0; i < 1000 && l2.errors() == 0; ++i) {  // the worker's first connect fails
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(l2.errors(), 1u);
  EXPECT_EQ(l2.writes(), 0u);
}

TEST(RedisCache, ParsesAddresses) {
  EXPECT_EQ(parse_redis_address("10.0.0.5:6380").port, 6380);
  EXPECT_EQ(parse_redis_address("redis.internal:1").host, "redis.internal");
  EXPECT_EQ(parse_redis_address("[::1]:7000").host, "::1");
  EXPECT_THROW(parse_redis_address("host:"), Error);
  EXPECT_THROW(parse_redis_address("host:99999"), Error);
  EXPECT_THROW(parse_redis_address(":6379"), Error);
}

}  // namespace
}  // namespace autoglm::server::cache
