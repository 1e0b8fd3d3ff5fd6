// The byte-level BPE model of tokenizer.json ("model": {"type": "BPE"}): vocabulary, merge
// ranks keyed by id pairs, ignore_merges, unk handling, and a bounded word cache.
// Thread ownership: immutable after load except the word cache, whose shards are each guarded
// by a mutex;
// any thread may call encode_word.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoglm::tok {

// Hash for unordered maps keyed by std::string that also accept std::string_view lookups.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Upper bound on token ids relative to the number of entries (ids may have small gaps).
  static constexpr size_t kMaxIdSlack = 65536;
  // Limits far above real tokenizers (~260k entries) that keep hostile files from
  // exhausting memory.
  static constexpr size_t kMaxVocabEntries = size_t{1} << 22;
  static constexpr size_t kMaxMerges = size_t{1} << 22;

  // Parses the "model" object. Throws Error(kTokenizer) naming `source` and the field at fault.
  // `max_id` bounds the accepted ids.
  BpeModel(const nlohmann::json& model, std::string_view source, size_t max_id);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-token, given as raw bytes (the byte-level alphabet is implied).
  void encode_word(std::string_view bytes, std::vector<uint32_t>& out) const;

  // Vocabulary lookups by byte-level spelling (as written in tokenizer.json).
  std::optional<uint32_t> token_to_id(std::string_view spelling) const;
  // The spelling of `id`, or nullptr if the vocabulary has no such id.
  const std::string* id_to_token(uint32_t id) const;
  // One past the largest id in the vocabulary.
  size_t id_end() const { return id_to_token_.size(); }

 private:
  struct MergeResult {
    uint32_t rank;
    uint32_t new_id;
  };
  static uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }
  void load_vocab(const nlohmann::json& vocab, const std::string& where, size_t max_id);
  void load_merges(const nlohmann::json& merges, const std::string& where);
  void merge_word(std::string_view bytes, std::vector<uint32_t>& out) const;

  StringMap<uint32_t> vocab_;        // byte-level spelling -> id
  StringMap<uint32_t> bytes_vocab_;  // raw bytes -> id (for ignore_merges)
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  std::array<int64_t, 256> byte_ids_{};  // id of each single byte, -1 if not in the vocabulary
  std::unordered_map<uint64_t, MergeResult> merges_;
  std::optional<uint32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  // Word cache, sharded so that threads encoding at once rarely wait on the same lock.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheMaxEntriesPerShard = 8192;
  static constexpr size_t kCacheMaxWordBytes = 256;
  struct CacheShard {
    std::mutex mutex;
    StringMap<std::vector<uint32_t>> words;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace autoglm::tok
