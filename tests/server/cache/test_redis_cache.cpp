// RedisCache against a real Debian redis-server started here on a free loopback port: a sealed
// round trip with TTL, misses, and many threads reading and writing while Redis is stopped
// under them (no crash, no race: this test runs under TSan in `make tsan-test`; every call
// returns, errors and bypasses are counted). Skipped when redis-server is not installed.
// Owner: the "cache" thread.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "loopback_port.h"
#include "server/cache/redis_cache.h"

extern char** environ;

namespace autoglm::server::cache {
namespace {

constexpr const char* kRedisServer = "/usr/bin/redis-server";

// redis-server --port P --save '' --appendonly no, stopped (SIGTERM, reaped) by stop().
class RedisProcess {
 public:
  explicit RedisProcess(int port) {
    const std::string port_text = std::to_string(port);
    const std::string dir = std::filesystem::temp_directory_path().string();
    std::vector<std::string> args = {kRedisServer, "--port",      port_text, "--bind",
                                     "127.0.0.1",  "--save",      "",        "--appendonly",
                                     "no",         "--dir",       dir,       "--loglevel",
                                     "warning",    "--daemonize", "no"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, kRedisServer, nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~RedisProcess() { stop(); }
  bool started() const { return pid_ > 0; }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

template <class Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 2000; ++i) {  // up to 10 s on a loaded machine
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

RedisOptions options_for(int port) {
  RedisOptions options = parse_redis_address("127.0.0.1:" + std::to_string(port));
  options.timeout = std::chrono::milliseconds(200);  // sanitizer builds are slow
  options.ttl = std::chrono::milliseconds(60'000);
  return options;
}

CacheKeyRing test_keys() {
  return CacheKeyRing::parse("k1:" + std::string(64, 'a'), "test");
}

TEST(RedisCacheLive, RoundTripsThroughRealRedisThenBypassesWhenItStops) {
  if (access(kRedisServer, X_OK) != 0) GTEST_SKIP() << "redis-server is not installed";
  const int port = test::unused_loopback_port();
  RedisProcess redis(port);
  ASSERT_TRUE(redis.started());
  RedisCache l2(options_for(port), test_keys());
  ASSERT_TRUE(eventually([&] { return l2.available(); })) << "never connected";
  EXPECT_EQ(l2.get("absent").outcome, RedisCache::Outcome::kMiss);
  l2.put("present", "the answer");
  ASSERT_TRUE(eventually([&] { return l2.writes() == 1; }));
  const RedisCache::Result hit = l2.get("present");
  EXPECT_EQ(hit.outcome, RedisCache::Outcome::kHit);
  EXPECT_EQ(hit.value, "the answer");

  // Readers and writers on several threads while Redis goes away under them.
  std::atomic<bool> done{false};
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !done.load(); ++i) {
        const std::string key = std::to_string(t * 100000 + i % 50);
        if (i % 2 == 0) {
          l2.put(key, "value");
        } else {
          l2.get(key);
        }
        calls.fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return calls.load() > 200; }));
  const uint64_t errors_before = l2.errors();
  redis.stop();
  ASSERT_TRUE(eventually([&] { return l2.errors() > errors_before && !l2.available(); }));
  const uint64_t bypasses = l2.bypasses();
  ASSERT_TRUE(eventually([&] { return l2.bypasses() > bypasses; }));
  done.store(true);
  for (std::thread& thread : threads) thread.join();
  EXPECT_NE(l2.get("present").outcome, RedisCache::Outcome::kHit);
}

}  // namespace
}  // namespace autoglm::server::cache
