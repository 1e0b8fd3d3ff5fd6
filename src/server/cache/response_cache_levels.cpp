// See response_cache.h: ResponseCache (L1 then L2), its Prometheus metrics, and building it
// from the serve settings. Owner: the "cache" thread.
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "core/error.h"
#include "server/cache/redis_cache.h"
#include "server/cache/response_cache.h"

namespace autoglm::server::cache {

// Lookups take microseconds (L1) to the Redis timeout (L2): 10 us .. 1 s.
struct ResponseCache::LatencyHistograms {
  static std::vector<double> bounds() {
    return {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
            0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1.0};
  }
  mutable std::mutex mutex;
  Histogram l1{bounds()};
  Histogram l2{bounds()};
};

ResponseCache::ResponseCache(std::string model_id, std::string revision, uint64_t l1_bytes,
                             std::unique_ptr<RedisCache> l2)
    : model_id_(std::move(model_id)),
      revision_(std::move(revision)),
      l1_(l1_bytes > 0 ? std::make_unique<LruCache>(l1_bytes) : nullptr),
      l2_(std::move(l2)),
      latency_(std::make_unique<LatencyHistograms>()) {}

ResponseCache::~ResponseCache() = default;

void ResponseCache::observe_latency(CacheLevel level,
                                    std::chrono::steady_clock::time_point started) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::lock_guard<std::mutex> lock(latency_->mutex);
  (level == CacheLevel::kL1 ? latency_->l1 : latency_->l2).observe(seconds);
}

std::optional<CacheHit> ResponseCache::lookup(const CacheKey& key) {
  const std::string hex = key_hex(key);
  if (l1_) {
    const auto started = std::chrono::steady_clock::now();
    std::optional<std::string> bytes = l1_->get(hex);
    std::optional<CachedAnswer> answer;
    if (bytes) answer = deserialize_answer(*bytes);
    observe_latency(CacheLevel::kL1, started);
    if (answer) {
      l1_hits_.fetch_add(1);
      return CacheHit{std::move(*answer), CacheLevel::kL1};
    }
    l1_misses_.fetch_add(1);
  }
  if (!l2_) return std::nullopt;
  const auto started = std::chrono::steady_clock::now();
  RedisCache::Result result = l2_->get(hex);
  if (result.outcome == RedisCache::Outcome::kBypass) return std::nullopt;  // nothing measured
  observe_latency(CacheLevel::kL2, started);
  std::optional<CachedAnswer> answer;
  if (result.outcome == RedisCache::Outcome::kHit) answer = deserialize_answer(result.value);
  if (!answer) {
    if (result.outcome == RedisCache::Outcome::kMiss) l2_misses_.fetch_add(1);
    return std::nullopt;
  }
  l2_hits_.fetch_add(1);
  if (l1_) l1_->put(hex, std::move(result.value));  // the next lookup here stays in-process
  return CacheHit{std::move(*answer), CacheLevel::kL2};
}

void ResponseCache::store(const CacheKey& key, const CachedAnswer& answer) {
  if (answer.finish != FinishCause::kStop && answer.finish != FinishCause::kLength) return;
  const std::string hex = key_hex(key);
  std::string bytes = serialize_answer(answer);
  stores_.fetch_add(1);
  if (l2_) l2_->put(hex, bytes);
  if (l1_) l1_->put(hex, std::move(bytes));
}

ResponseCache::Counters ResponseCache::counters() const {
  Counters c;
  c.l1_hits = l1_hits_.load();
  c.l1_misses = l1_misses_.load();
  c.l2_hits = l2_hits_.load();
  c.l2_misses = l2_misses_.load();
  c.stores = stores_.load();
  if (l2_) {
    c.l2_errors = l2_->errors();
    c.l2_bypasses = l2_->bypasses();
  }
  return c;
}

namespace {

std::string join_labels(std::string_view labels, std::string_view extra) {
  if (labels.empty()) return std::string(extra);
  if (extra.empty()) return std::string(labels);
  return std::string(labels) + "," + std::string(extra);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, const std::string& labels, double value) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, value);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
}

void histogram(std::string& out, std::string_view name, const std::string& labels,
               const Histogram& h) {
  const std::vector<uint64_t> cumulative = h.cumulative_counts();
  const auto bounds = h.upper_bounds();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const std::string le = i < bounds.size() ? fmt::format("{}", bounds[i]) : "+Inf";
    sample(out, std::string(name) + "_bucket", join_labels(labels, "le=\"" + le + "\""),
           static_cast<double>(cumulative[i]));
  }
  sample(out, std::string(name) + "_sum", labels, h.sum());
  sample(out, std::string(name) + "_count", labels, static_cast<double>(h.count()));
}

}  // namespace

std::string ResponseCache::render_metrics(std::string_view labels) const {
  const Counters c = counters();
  const std::string l1 = join_labels(labels, "level=\"l1\"");
  const std::string l2 = join_labels(labels, "level=\"l2\"");
  const std::string plain(labels);
  std::string out;
  header(out, "autoglm:response_cache_hits_total", "counter",
         "Response cache lookups answered, by level.");
  sample(out, "autoglm:response_cache_hits_total", l1, static_cast<double>(c.l1_hits));
  sample(out, "autoglm:response_cache_hits_total", l2, static_cast<double>(c.l2_hits));
  header(out, "autoglm:response_cache_misses_total", "counter",
         "Response cache lookups that found nothing, by level (L2: Redis answered nil).");
  sample(out, "autoglm:response_cache_misses_total", l1, static_cast<double>(c.l1_misses));
  sample(out, "autoglm:response_cache_misses_total", l2, static_cast<double>(c.l2_misses));
  header(out, "autoglm:response_cache_stores_total", "counter",
         "Deterministic answers stored in the response cache.");
  sample(out, "autoglm:response_cache_stores_total", plain, static_cast<double>(c.stores));
  header(out, "autoglm:response_cache_l2_errors_total", "counter",
         "Redis connects or commands that failed or timed out, and values that did not open.");
  sample(out, "autoglm:response_cache_l2_errors_total", plain, static_cast<double>(c.l2_errors));
  header(out, "autoglm:response_cache_l2_bypasses_total", "counter",
         "Reads and writes that skipped Redis because it was unavailable.");
  sample(out, "autoglm:response_cache_l2_bypasses_total", plain,
         static_cast<double>(c.l2_bypasses));
  header(out, "autoglm:response_cache_l2_up", "gauge",
         "1 while a Redis connection is pooled (L2 in use), else 0.");
  sample(out, "autoglm:response_cache_l2_up", plain, l2_ && l2_->available() ? 1.0 : 0.0);
  header(out, "autoglm:response_cache_l1_bytes", "gauge", "Bytes held by the in-process L1.");
  sample(out, "autoglm:response_cache_l1_bytes", plain,
         l1_ ? static_cast<double>(l1_->bytes()) : 0.0);
  header(out, "autoglm:response_cache_l1_entries", "gauge", "Answers held by the L1.");
  sample(out, "autoglm:response_cache_l1_entries", plain,
         l1_ ? static_cast<double>(l1_->entries()) : 0.0);
  header(out, "autoglm:response_cache_l1_evictions_total", "counter",
         "L1 entries evicted to stay within cache_l1_bytes.");
  sample(out, "autoglm:response_cache_l1_evictions_total", plain,
         l1_ ? static_cast<double>(l1_->evictions()) : 0.0);
  header(out, "autoglm:response_cache_lookup_seconds", "histogram",
         "Response cache lookup latency in seconds, by level.");
  std::lock_guard<std::mutex> lock(latency_->mutex);
  histogram(out, "autoglm:response_cache_lookup_seconds", l1, latency_->l1);
  histogram(out, "autoglm:response_cache_lookup_seconds", l2, latency_->l2);
  return out;
}

std::unique_ptr<ResponseCache> open_response_cache(const CacheSettings& settings,
                                                   std::string model_id,
                                                   const std::string& model_dir,
                                                   const char* env_key, CacheEventSink on_event) {
  if (!settings.enabled) return nullptr;
  std::unique_ptr<RedisCache> l2;
  if (!settings.redis.empty()) {
    RedisOptions options = parse_redis_address(settings.redis);
    options.timeout = settings.redis_timeout;
    options.ttl = settings.ttl;
    if (settings.key_file.empty() && (env_key == nullptr || *env_key == '\0')) {
      fail(ErrorCode::kInvalidArgument,
           "cache_redis is set but no cache key: set cache_key_file or AUTOGLM_CACHE_KEY "
           "('kid:<64 hex digits>' entries); L2 values are always encrypted");
    }
    CacheKeyRing keys = settings.key_file.empty()
                            ? CacheKeyRing::parse(env_key, "AUTOGLM_CACHE_KEY")
                            : CacheKeyRing::from_file(settings.key_file);
    l2 = std::make_unique<RedisCache>(std::move(options), std::move(keys), std::move(on_event));
  }
  return std::make_unique<ResponseCache>(std::move(model_id),
                                         model_revision(model_dir, settings.revision),
                                         settings.l1_bytes, std::move(l2));
}

}  // namespace autoglm::server::cache
