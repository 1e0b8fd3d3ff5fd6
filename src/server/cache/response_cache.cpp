// See response_cache.h: the key, the answer's byte format, the L1 LRU and the two-level cache.
// Owner: the "cache" thread.
#include "server/cache/response_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/error.h"
#include "server/cache/redis_cache.h"

namespace autoglm::server::cache {
namespace {

// Little-endian, length-prefixed fields: unambiguous, so two different requests can never
// produce the same bytes (and so the same key).
class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  // -0.0 and 0.0 mean the same setting; every other value keeps its exact bits.
  void f32(float v) { u32(v == 0.0f ? 0u : std::bit_cast<uint32_t>(v)); }
  void bytes(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  uint8_t u8() {
    if (in_.empty()) return fail_read<uint8_t>();
    const auto v = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  float f32() { return std::bit_cast<float>(u32()); }
  std::string bytes() {
    const uint64_t size = u64();
    if (!ok_ || size > in_.size()) return fail_read<std::string>();
    std::string s(in_.substr(0, size));
    in_.remove_prefix(size);
    return s;
  }
  // A count of items of at least `item_bytes` each: larger than what is left means corrupt.
  uint64_t count(size_t item_bytes) {
    const uint64_t n = u64();
    if (!ok_ || n > in_.size() / std::max<size_t>(item_bytes, 1)) return fail_read<uint64_t>();
    return n;
  }

 private:
  template <class T>
  T fail_read() {
    ok_ = false;
    in_ = {};
    return T{};
  }
  std::string_view in_;
  bool ok_ = true;
};

constexpr std::string_view kKeyDomain = "autoglm-response-cache-key-v1";
constexpr uint32_t kAnswerMagic = 0x31434741;  // "AGC1"

CacheKey sha256(std::string_view bytes) {
  CacheKey digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    fail(ErrorCode::kInternal, "response cache: SHA-256 failed");
  }
  return digest;
}

std::optional<std::string> read_small_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

std::string key_hex(const CacheKey& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : key) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 15]);
  }
  return hex;
}

bool is_cacheable(const GenerationRequest& request) {
  return request.sampling.temperature == 0.0f || request.sampling.seed.has_value();
}

std::string canonical_request(const GenerationRequest& request) {
  ByteWriter w;
  w.u64(request.prompt_ids.size());
  for (int32_t id : request.prompt_ids) w.i32(id);
  w.bytes(request.prompt_ids.empty() ? std::string_view(request.prompt) : std::string_view());
  const SamplingParams& s = request.sampling;
  w.f32(s.temperature);
  w.i32(s.top_k);
  w.f32(s.top_p);
  w.f32(s.min_p);
  w.f32(s.repetition_penalty);
  w.f32(s.presence_penalty);
  w.f32(s.frequency_penalty);
  w.u64(s.logit_bias.size());
  for (const auto& [id, bias] : s.logit_bias) {
    w.i32(id);
    w.f32(bias);
  }
  w.u8(s.seed.has_value() ? 1 : 0);
  w.u64(s.seed.value_or(0));
  w.u8(s.logprobs ? 1 : 0);
  w.i32(s.top_logprobs);
  const StopParams& stop = request.stop;
  w.i32(stop.max_tokens);
  w.u8(stop.ignore_eos ? 1 : 0);
  w.u64(stop.stop_token_ids.size());
  for (int32_t id : stop.stop_token_ids) w.i32(id);
  w.u64(stop.stop_strings.size());
  for (const std::string& text : stop.stop_strings) w.bytes(text);
  return w.take();
}

CacheKey make_cache_key(std::string_view model_id, std::string_view revision,
                        std::string_view tenant, const GenerationRequest& request) {
  ByteWriter w;
  w.bytes(kKeyDomain);
  w.bytes(model_id);
  w.bytes(revision);
  w.bytes(tenant);
  w.bytes(canonical_request(request));
  return sha256(w.take());
}

std::string model_revision(const std::string& model_dir, std::string_view extra) {
  namespace fs = std::filesystem;
  ByteWriter w;
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json",
                           "tokenizer_config.json", "autoglm-manifest.json"}) {
    w.bytes(name);
    const std::optional<std::string> content = read_small_file(fs::path(model_dir) / name);
    w.u8(content ? 1 : 0);
    if (content) w.bytes(key_hex(sha256(*content)));
  }
  std::vector<std::pair<std::string, uintmax_t>> weights;
  std::error_code error;
  for (fs::directory_iterator it(model_dir, error), end; !error && it != end; it.increment(error)) {
    std::error_code size_error;
    if (it->path().extension() == ".safetensors") {
      weights.emplace_back(it->path().filename().string(), it->file_size(size_error));
    }
  }
  std::sort(weights.begin(), weights.end());
  for (const auto& [name, size] : weights) {
    w.bytes(name);
    w.u64(size);
  }
  w.bytes(extra);
  return key_hex(sha256(w.take())).substr(0, 32);
}

std::string serialize_answer(const CachedAnswer& answer) {
  ByteWriter w;
  w.u32(kAnswerMagic);
  w.u8(static_cast<uint8_t>(answer.finish));
  w.i32(answer.prompt_tokens);
  w.i32(answer.completion_tokens);
  w.bytes(answer.text);
  w.u64(answer.token_ids.size());
  for (int32_t id : answer.token_ids) w.i32(id);
  w.u64(answer.logprobs.size());
  for (const Logprobs& lp : answer.logprobs) {
    w.i32(lp.chosen.id);
    w.f32(lp.chosen.logprob);
    w.u64(lp.top.size());
    for (const TokenLogprob& top : lp.top) {
      w.i32(top.id);
      w.f32(top.logprob);
    }
  }
  return w.take();
}

std::optional<CachedAnswer> deserialize_answer(std::string_view bytes) {
  ByteReader r(bytes);
  CachedAnswer answer;
  if (r.u32() != kAnswerMagic) return std::nullopt;
  const uint8_t finish = r.u8();
  if (finish != static_cast<uint8_t>(FinishCause::kStop) &&
      finish != static_cast<uint8_t>(FinishCause::kLength)) {
    return std::nullopt;  // only successful answers are ever stored
  }
  answer.finish = static_cast<FinishCause>(finish);
  answer.prompt_tokens = r.i32();
  answer.completion_tokens = r.i32();
  answer.text = r.bytes();
  answer.token_ids.resize(r.count(4));
  for (int32_t& id : answer.token_ids) id = r.i32();
  answer.logprobs.resize(r.count(16));
  for (Logprobs& lp : answer.logprobs) {
    lp.chosen.id = r.i32();
    lp.chosen.logprob = r.f32();
    lp.top.resize(r.count(8));
    for (TokenLogprob& top : lp.top) {
      top.id = r.i32();
      top.logprob = r.f32();
    }
  }
  if (!r.done()) return std::nullopt;
  return answer;
}

// ---- L1 ----

std::optional<std::string> LruCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, found->second);
  return found->second->value;
}

bool LruCache::put(const std::string& key, std::string value) {
  Entry entry{key, std::move(value)};
  const uint64_t size = charge(entry);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto found = index_.find(key); found != index_.end()) erase_locked(found->second);
  if (size > capacity_ / 4) return false;
  while (bytes_ + size > capacity_ && !order_.empty()) {
    erase_locked(std::prev(order_.end()));
    ++evictions_;
  }
  order_.push_front(std::move(entry));
  index_[key] = order_.begin();
  bytes_ += size;
  return true;
}

void LruCache::erase_locked(std::list<Entry>::iterator it) {
  bytes_ -= charge(*it);
  index_.erase(it->key);
  order_.erase(it);
}

uint64_t LruCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t LruCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return order_.size();
}

uint64_t LruCache::evictions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return evictions_;
}

std::string_view cache_level_name(CacheLevel level) {
  return level == CacheLevel::kL1 ? "l1" : "l2";
}

}  // namespace autoglm::server::cache
