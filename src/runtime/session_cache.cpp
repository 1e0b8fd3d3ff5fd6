// See session_cache.h: pins as KV references, TTL expiry, and LRU release under the cap.
// Thread ownership: the engine thread only.
#include "runtime/session_cache.h"

#include <algorithm>
#include <utility>

namespace autoglm {

std::string session_key(std::string_view tenant, std::string_view session_id) {
  std::string key = std::to_string(tenant.size());
  key += ':';
  key += tenant;
  key += session_id;
  return key;
}

SessionCache::SessionCache(SessionConfig config, KvCacheManager& kv) : config_(config), kv_(kv) {}

SessionCache::~SessionCache() {
  for (auto& [key, session] : sessions_) release(session);
}

void SessionCache::begin_turn(const std::string& key) {
  if (!enabled()) return;
  Session& session = sessions_[key];
  session.turns_in_flight += 1;
  session.touched = ++clock_;
}

void SessionCache::end_turn(const std::string& key, std::span<const BlockId> computed_blocks,
                            bool completed, SteadyTime now) {
  if (!enabled()) return;
  const auto it = sessions_.find(key);
  if (it == sessions_.end()) return;  // released for memory while the turn ran: begin afresh
  Session& session = it->second;
  session.turns_in_flight = std::max(0, session.turns_in_flight - 1);
  session.last_used = now;
  session.touched = ++clock_;
  if (completed) {
    // New pins first: the blocks this turn shares with the last one keep a reference.
    std::vector<BlockId> pins =
        kv_.acquire_indexed_chain(computed_blocks, config_.max_pinned_blocks);
    release(session);
    session.pins = std::move(pins);
    pinned_blocks_ += static_cast<int32_t>(session.pins.size());
    enforce_cap(key);
  }
  if (session.pins.empty() && session.turns_in_flight == 0) sessions_.erase(key);
}

void SessionCache::expire(SteadyTime now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& session = it->second;
    if (session.turns_in_flight == 0 && now - session.last_used >= config_.ttl) {
      release(session);
      ++expired_;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<SteadyTime> SessionCache::next_expiry() const {
  std::optional<SteadyTime> next;
  for (const auto& [key, session] : sessions_) {
    if (session.turns_in_flight > 0 || session.pins.empty()) continue;
    const SteadyTime due = session.last_used + config_.ttl;
    if (!next || due < *next) next = due;
  }
  return next;
}

bool SessionCache::release_one() {
  return release_lru({});
}

void SessionCache::enforce_cap(const std::string& keep) {
  while (pinned_blocks_ > config_.max_pinned_blocks && release_lru(keep)) {
  }
}

// The victim is the session holding pins that was used longest ago, idle sessions before those
// with a turn in flight (their pins are about to be reused). `keep` is never chosen.
bool SessionCache::release_lru(const std::string& keep) {
  auto victim = sessions_.end();
  auto rank = [](const Session& s) { return std::make_pair(s.turns_in_flight > 0, s.touched); };
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.pins.empty() || it->first == keep) continue;
    if (victim == sessions_.end() || rank(it->second) < rank(victim->second)) victim = it;
  }
  if (victim == sessions_.end()) return false;
  release(victim->second);
  ++evicted_;
  if (victim->second.turns_in_flight == 0) sessions_.erase(victim);
  return true;
}

void SessionCache::release(Session& session) {
  if (session.pins.empty()) return;
  // Tail first, as the scheduler releases tables: the chain loses its end before its start.
  std::reverse(session.pins.begin(), session.pins.end());
  kv_.release(session.pins);
  pinned_blocks_ -= static_cast<int32_t>(session.pins.size());
  session.pins.clear();
}

SessionStats SessionCache::stats() const {
  SessionStats out;
  out.active = static_cast<int32_t>(sessions_.size());
  out.pinned_blocks = pinned_blocks_;
  out.expired = expired_;
  out.evicted = evicted_;
  return out;
}

std::vector<std::span<const BlockId>> SessionCache::pinned_tables() const {
  std::vector<std::span<const BlockId>> tables;
  for (const auto& [key, session] : sessions_) tables.emplace_back(session.pins);
  return tables;
}

std::vector<BlockId> SessionCache::pins_of(const std::string& key) const {
  const auto it = sessions_.find(key);
  return it == sessions_.end() ? std::vector<BlockId>{} : it->second.pins;
}

}  // namespace autoglm
