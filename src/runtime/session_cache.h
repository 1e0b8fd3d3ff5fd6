// The context manager: multi-turn sessions that keep their KV cached between turns. When a turn
// of a session ends normally, the full blocks of its prompt + output that the prefix cache
// indexes stay pinned (the session holds a reference on each, so LRU eviction cannot take
// them) for a TTL, under a memory cap in blocks. The next turn, whose prompt starts with those
// tokens, finds them through the ordinary prefix-cache lookup. A session with a turn in flight
// never expires; over the cap, or when the scheduler needs blocks for live work, the least
// recently used session is released first. Sessions are keyed by (tenant, session id), so one
// tenant can never refresh or release another's.
// Thread ownership: the engine thread only (the scheduler calls it); no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/kv_cache.h"

namespace autoglm {

using SteadyTime = std::chrono::steady_clock::time_point;

struct SessionConfig {
  std::chrono::milliseconds ttl{std::chrono::seconds(300)};  // <= 0: sessions are off
  int32_t max_pinned_blocks = 0;                             // references held by all sessions
};

struct SessionStats {
  int32_t active = 0;         // sessions holding pins or with a turn in flight
  int32_t pinned_blocks = 0;  // references the sessions hold (a block two share counts twice)
  uint64_t expired = 0;       // released by the TTL
  uint64_t evicted = 0;       // released for the cap or for live work
};

// The map key of a session: the tenant and the id, length-prefixed so that no two pairs meet.
std::string session_key(std::string_view tenant, std::string_view session_id);

class SessionCache {
 public:
  // `kv` must outlive the cache.
  SessionCache(SessionConfig config, KvCacheManager& kv);
  ~SessionCache();  // releases every pin
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  bool enabled() const { return config_.ttl.count() > 0 && config_.max_pinned_blocks > 0; }

  // A turn of `key` was queued: the session cannot expire until end_turn.
  void begin_turn(const std::string& key);
  // The turn ended at `now`. When `completed`, `computed_blocks` (the sequence's leading full
  // blocks whose K/V is computed, in order) replace the session's pins: the blocks the prefix
  // cache indexes under the same chain are pinned, then the old pins released, so a block both
  // turns share never drops to zero references. Otherwise the old pins stay. Either way the
  // session's TTL restarts.
  void end_turn(const std::string& key, std::span<const BlockId> computed_blocks, bool completed,
                SteadyTime now);
  // Releases sessions idle for the TTL or longer.
  void expire(SteadyTime now);
  // When the next idle session holding pins expires (nullopt: none), so an idle engine can
  // wake up for it.
  std::optional<SteadyTime> next_expiry() const;
  // Releases the least recently used session holding pins (idle ones before those with a turn
  // in flight). False when no session holds any.
  bool release_one();

  SessionStats stats() const;
  // The pinned blocks of every session (for KvCacheManager::check_invariants).
  std::vector<std::span<const BlockId>> pinned_tables() const;
  // The pins of one session, empty when unknown (tests).
  std::vector<BlockId> pins_of(const std::string& key) const;

 private:
  struct Session {
    std::vector<BlockId> pins;
    SteadyTime last_used{};
    int32_t turns_in_flight = 0;
    uint64_t touched = 0;  // a counter, so LRU order is exact even for equal clock readings
  };
  void release(Session& session);
  void enforce_cap(const std::string& keep);
  bool release_lru(const std::string& keep);

  SessionConfig config_;
  KvCacheManager& kv_;
  std::unordered_map<std::string, Session> sessions_;
  int32_t pinned_blocks_ = 0;
  uint64_t clock_ = 0;
  uint64_t expired_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace autoglm
