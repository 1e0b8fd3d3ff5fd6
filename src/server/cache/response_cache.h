// The two-level response cache (docs/OPERATIONS.md "Response cache"): whole answers of
// deterministic requests (greedy, or an explicit seed), keyed by SHA-256 over the served model
// and its revision, the tenant and the canonical request, so tenants never share an entry.
// L1 is an in-process LRU bounded in bytes; L2 (optional) is Redis, shared by replicas, with
// values sealed by AES-256-GCM (redis_cache.h, cache_crypto.h). A lookup tries L1, then L2
// (an L2 hit is copied into L1); a store writes L1 at once and queues the L2 write.
// Thread ownership: LruCache and ResponseCache are safe from any thread (mutexes, atomics);
// lookups run on I/O threads and block at most the Redis timeout; stores run on the engine
// thread and never block on Redis. Owner: the "cache" thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autoglm/engine.h"
#include "server/cache/redis_cache.h"

namespace autoglm::server::cache {

// The serve settings cache_* (serve_config.cpp).
struct CacheSettings {
  bool enabled = false;
  uint64_t l1_bytes = 64ull << 20;  // 0: no L1
  std::string redis;                // "host:port"; empty: no L2
  std::chrono::milliseconds ttl{3'600'000};
  std::string key_file;  // "kid:hex" lines; empty: the AUTOGLM_CACHE_KEY environment variable
  std::chrono::milliseconds redis_timeout{50};
  std::string revision;  // added to the model's own revision (config.json etc.) in the key
};

// ---- the key ----

using CacheKey = std::array<uint8_t, 32>;
std::string key_hex(const CacheKey& key);

// Only deterministic requests are cached: temperature 0 (greedy) or an explicit seed.
bool is_cacheable(const GenerationRequest& request);
// The bytes hashed for a request: every GenerationRequest field that affects the output
// (prompt ids, sampling, stop), length-prefixed and in a fixed order; not the tenant, priority,
// deadlines or session (they do not change the answer; the tenant is keyed separately).
std::string canonical_request(const GenerationRequest& request);
CacheKey make_cache_key(std::string_view model_id, std::string_view revision,
                        std::string_view tenant, const GenerationRequest& request);

// A revision string for a model directory: SHA-256 over config.json, generation_config.json,
// tokenizer.json, tokenizer_config.json, autoglm-manifest.json (those present) and the names
// and sizes of its *.safetensors files, then `extra` (the cache_revision setting). Identical
// copies of a model on two replicas get the same revision.
std::string model_revision(const std::string& model_dir, std::string_view extra);

// ---- the value ----

struct CachedAnswer {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<Logprobs> logprobs;  // empty unless the request asked for logprobs
  FinishCause finish = FinishCause::kStop;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

std::string serialize_answer(const CachedAnswer& answer);
// nullopt for anything that is not a value serialize_answer wrote (bounds-checked).
std::optional<CachedAnswer> deserialize_answer(std::string_view bytes);

// ---- L1 ----

class LruCache {
 public:
  // Bytes charged per entry beyond its key and value (list node, map slot, strings).
  static constexpr uint64_t kEntryOverhead = 128;
  explicit LruCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  std::optional<std::string> get(const std::string& key);  // marks it most recently used
  // Inserts or replaces, evicting least recently used entries to fit. An entry larger than a
  // quarter of the capacity is not kept (returns false), so one answer cannot flush the rest.
  bool put(const std::string& key, std::string value);

  uint64_t bytes() const;
  size_t entries() const;
  uint64_t evictions() const;
  uint64_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::string key;
    std::string value;
  };
  static uint64_t charge(const Entry& entry) {
    return entry.key.size() + entry.value.size() + kEntryOverhead;
  }
  void erase_locked(std::list<Entry>::iterator it);

  const uint64_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> order_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  uint64_t bytes_ = 0;
  uint64_t evictions_ = 0;
};

// ---- both levels ----

enum class CacheLevel { kL1, kL2 };
std::string_view cache_level_name(CacheLevel level);  // "l1", "l2"

struct CacheHit {
  CachedAnswer answer;
  CacheLevel level = CacheLevel::kL1;
};

class ResponseCache {
 public:
  // `l2` may be null (no Redis). `l1_bytes` 0 turns L1 off.
  ResponseCache(std::string model_id, std::string revision, uint64_t l1_bytes,
                std::unique_ptr<RedisCache> l2);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  CacheKey key_for(std::string_view tenant, const GenerationRequest& request) const {
    return make_cache_key(model_id_, revision_, tenant, request);
  }
  std::optional<CacheHit> lookup(const CacheKey& key);
  void store(const CacheKey& key, const CachedAnswer& answer);

  // The autoglm:response_cache_* metrics in the Prometheus text format, each sample labelled
  // with `labels` (e.g. model_name="...") plus its level.
  std::string render_metrics(std::string_view labels) const;

  struct Counters {
    uint64_t l1_hits = 0, l1_misses = 0, l2_hits = 0, l2_misses = 0;
    uint64_t l2_errors = 0, l2_bypasses = 0, stores = 0;
  };
  Counters counters() const;
  const std::string& revision() const { return revision_; }

 private:
  struct LatencyHistograms;
  void observe_latency(CacheLevel level, std::chrono::steady_clock::time_point started);

  const std::string model_id_;
  const std::string revision_;
  std::unique_ptr<LruCache> l1_;  // null: off
  std::unique_ptr<RedisCache> l2_;
  std::atomic<uint64_t> l1_hits_{0}, l1_misses_{0}, l2_hits_{0}, l2_misses_{0}, stores_{0};
  std::unique_ptr<LatencyHistograms> latency_;
};

// The cache the settings describe, or null when settings.enabled is false. L2 needs a key
// ring: from settings.key_file, else `env_key` (AUTOGLM_CACHE_KEY); throws Error naming what is
// missing when Redis is configured without one. `on_event(message, detail)` receives L2 state
// changes (down, up) for the log; it may be empty.
using CacheEventSink = std::function<void(std::string_view message, std::string_view detail)>;
std::unique_ptr<ResponseCache> open_response_cache(const CacheSettings& settings,
                                                   std::string model_id,
                                                   const std::string& model_dir,
                                                   const char* env_key, CacheEventSink on_event);

}  // namespace autoglm::server::cache
