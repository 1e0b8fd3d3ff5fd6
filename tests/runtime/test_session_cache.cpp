// Sessions (the context manager) on plain data: the scheduler with the real KV cache manager
// and SessionCache, fake token ids, no model. A completed turn pins exactly its computed full
// blocks; the next turn reuses them even after other traffic cycled the pool; the TTL (with
// an injected clock) and the cap release sessions, least recently used first; an idle pool
// takes pins back rather than stall; the pool invariants hold after every step.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/scheduler.h"
#include "runtime/session_cache.h"

namespace autoglm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int32_t kBlockSize = 4;

std::vector<int32_t> tokens_of(int32_t length, int32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (int32_t i = 0; i < length; ++i) ids[static_cast<size_t>(i)] = (seed * 53 + i * 17) % 991;
  return ids;
}

struct SessionHarness {
  SessionHarness(int32_t num_blocks, int32_t cap, bool sessions_on = true)
      : kv(KvCacheConfig{num_blocks, kBlockSize, true, "test-model"}),
        sessions(SessionConfig{sessions_on ? milliseconds(seconds(60)) : milliseconds(0), cap}, kv),
        scheduler({.max_num_seqs = 8, .max_batched_tokens = 64}, kv, &sessions) {}

  // Runs one request to its end at time `now` (every step at that time); returns its tokens
  // (prompt + output) and records its cached prompt tokens.
  std::vector<int32_t> run(std::vector<int32_t> prompt, int32_t max_tokens,
                           const std::string& key = {}, SteadyTime now = SteadyTime{}) {
    SequenceRequest r;
    r.id = next_id++;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.session_key = key;
    std::vector<int32_t> all = r.prompt;
    scheduler.add(r);
    while (!scheduler.idle()) {
      StepPlan plan = scheduler.schedule(now);
      StepOutput out;
      for (SequenceId owner : plan.logits_owner) {
        const Sequence* seq = scheduler.find(owner);
        const int32_t token = (seq->total_tokens() * 7 + 3) % 991;
        out.rows.push_back({token, SequenceEnd::kNone});
        all.push_back(token);
      }
      for (SequenceId started : plan.started) {
        cached[started] = scheduler.find(started)->cached_prompt_tokens;
      }
      scheduler.update(plan, out);
      kv.check_invariants(scheduler.live_block_tables());
    }
    return all;
  }
  int32_t last_cached() const { return cached.at(next_id - 1); }

  KvCacheManager kv;
  SessionCache sessions;
  Scheduler scheduler;
  SequenceId next_id = 1;
  std::map<SequenceId, int32_t> cached;
};

// Fills the whole pool with distinct one-off prompts, cycling the LRU of cached-free blocks.
void other_traffic(SessionHarness& h, int32_t requests) {
  for (int32_t i = 0; i < requests; ++i) h.run(tokens_of(30, 1000 + i), 2);
}

TEST(SessionCache, PinsExactlyTheComputedFullBlocks) {
  SessionHarness h(64, 64);
  const std::string key = session_key("", "chat");
  // 10 prompt + 3 output = 13 tokens; the last one has no K/V, so 12 are computed: 3 blocks.
  std::vector<int32_t> turn = h.run(tokens_of(10, 1), 3, key);
  EXPECT_EQ(h.sessions.pins_of(key).size(), 3u);
  EXPECT_EQ(h.kv.stats().used_blocks, 3);
  // 11 + 1 = 12 tokens, 11 computed: only 2 full blocks, not the third (its last slot is empty).
  const std::string other = session_key("", "other");
  h.run(tokens_of(11, 2), 1, other);
  EXPECT_EQ(h.sessions.pins_of(other).size(), 2u);
  EXPECT_EQ(h.sessions.stats().active, 2);
  EXPECT_EQ(h.sessions.stats().pinned_blocks, 5);

  // The next turn extends the previous prompt + output and finds all 12 computed tokens.
  turn.push_back(500);
  turn.push_back(501);
  h.run(turn, 2, key);
  EXPECT_EQ(h.last_cached(), 12);
  EXPECT_EQ(h.sessions.pins_of(key).size(), 4u);  // 15 + 2 = 17 tokens, 16 computed
}

TEST(SessionCache, SurvivesPoolPressureThatEvictsUnpinnedPrefixes) {
  for (const bool with_session : {true, false}) {
    SessionHarness h(24, 6);
    const std::string key = with_session ? session_key("", "chat") : std::string{};
    std::vector<int32_t> turn = h.run(tokens_of(18, 3), 6, key);  // 23 computed: 5 blocks
    other_traffic(h, 10);
    EXPECT_GT(h.kv.stats().evictions, 0u);
    turn.push_back(7);
    h.run(turn, 2, key);
    EXPECT_EQ(h.last_cached(), with_session ? 20 : 0) << "with_session " << with_session;
  }
}

TEST(SessionCache, TtlReleasesIdleSessionsNotOnesWithATurnInFlight) {
  SessionHarness h(64, 64);
  const SteadyTime t0{};
  const std::string key = session_key("", "a");
  h.run(tokens_of(12, 4), 2, key, t0);
  ASSERT_EQ(h.sessions.pins_of(key).size(), 3u);
  EXPECT_EQ(h.sessions.next_expiry(), t0 + seconds(60));
  h.sessions.expire(t0 + seconds(59));
  EXPECT_EQ(h.sessions.pins_of(key).size(), 3u);
  h.sessions.expire(t0 + seconds(60));
  EXPECT_TRUE(h.sessions.pins_of(key).empty());
  EXPECT_FALSE(h.sessions.next_expiry().has_value());
  EXPECT_EQ(h.sessions.stats().active, 0);
  EXPECT_EQ(h.sessions.stats().expired, 1u);
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
  EXPECT_EQ(h.kv.stats().cached_free_blocks, 3);  // still in the prefix cache, now evictable

  // A turn in flight keeps its session alive past the TTL; its end restarts the TTL.
  h.run(tokens_of(12, 5), 2, key, t0);
  h.sessions.begin_turn(key);
  EXPECT_FALSE(h.sessions.next_expiry().has_value());  // a turn in flight: no expiry due
  h.sessions.expire(t0 + seconds(3600));
  EXPECT_EQ(h.sessions.pins_of(key).size(), 3u);
  h.sessions.end_turn(key, {}, /*completed=*/false, t0 + seconds(3600));
  EXPECT_EQ(h.sessions.pins_of(key).size(), 3u);  // an unfinished turn keeps the old pins
  h.scheduler.schedule(t0 + seconds(3659));       // schedule() runs the expiry too
  EXPECT_EQ(h.sessions.pins_of(key).size(), 3u);
  h.scheduler.schedule(t0 + seconds(3660));
  EXPECT_TRUE(h.sessions.pins_of(key).empty());
}

TEST(SessionCache, OverTheCapTheLeastRecentlyUsedGoesFirst) {
  SessionHarness h(64, 7);
  const std::string a = session_key("", "a"), b = session_key("", "b"), c = session_key("", "c");
  std::vector<int32_t> turn_a = h.run(tokens_of(9, 6), 4, a);  // 12 computed: 3 blocks
  h.run(tokens_of(9, 7), 4, b);
  EXPECT_EQ(h.sessions.stats().pinned_blocks, 6);
  turn_a.push_back(9);
  h.run(turn_a, 1, a);  // a new turn refreshes a (14 tokens, 13 computed: still 3 blocks)
  EXPECT_EQ(h.last_cached(), 12);
  h.run(tokens_of(9, 8), 4, c);  // 9 > 7: b, the least recently used, is released
  EXPECT_TRUE(h.sessions.pins_of(b).empty());
  EXPECT_EQ(h.sessions.pins_of(a).size(), 3u);
  EXPECT_EQ(h.sessions.pins_of(c).size(), 3u);
  EXPECT_EQ(h.sessions.stats().evicted, 1u);
  EXPECT_LE(h.sessions.stats().pinned_blocks, 7);

  // One session larger than the cap keeps only its first cap blocks.
  SessionHarness small(64, 2);
  small.run(tokens_of(20, 9), 2, a);
  EXPECT_EQ(small.sessions.pins_of(a).size(), 2u);
}

TEST(SessionCache, TenantsHaveSeparateSessions) {
  EXPECT_NE(session_key("t1", "s"), session_key("t2", "s"));
  EXPECT_NE(session_key("ab", "c"), session_key("a", "bc"));
  SessionHarness h(64, 64);
  h.run(tokens_of(12, 10), 2, session_key("t1", "s"));
  EXPECT_TRUE(h.sessions.pins_of(session_key("t2", "s")).empty());
  EXPECT_EQ(h.sessions.pins_of(session_key("t1", "s")).size(), 3u);
}

TEST(SessionCache, AnIdlePoolTakesPinsBackRatherThanStall) {
  SessionHarness h(8, 8);
  const std::string key = session_key("", "big");
  h.run(tokens_of(16, 11), 5, key);  // 20 computed: 5 of the 8 blocks pinned
  ASSERT_EQ(h.sessions.pins_of(key).size(), 5u);
  h.run(tokens_of(29, 12), 3);  // needs all 8 blocks: the session gives its pins back
  EXPECT_TRUE(h.sessions.pins_of(key).empty());
  EXPECT_EQ(h.sessions.stats().evicted, 1u);
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

TEST(SessionCache, OffWhenTheTtlIsZero) {
  SessionHarness h(64, 64, /*sessions_on=*/false);
  const std::string key = session_key("", "chat");
  h.run(tokens_of(12, 13), 2, key);
  EXPECT_TRUE(h.sessions.pins_of(key).empty());
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

}  // namespace
}  // namespace autoglm
