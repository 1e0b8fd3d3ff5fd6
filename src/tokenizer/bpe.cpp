// See bpe.h.
#include "tokenizer/bpe.h"

#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace autoglm::tok {
namespace {

std::string describe(std::string_view token) {
  constexpr size_t kMax = 40;
  // Built with append: GCC 12 -O3 reports a false -Wrestrict on chained operator+ here.
  std::string out = "\"";
  out.append(token.substr(0, kMax));
  out.append(token.size() > kMax ? "...\"" : "\"");
  return out;
}

// Reads an optional string field; missing and null read as "".
std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return {};
  if (!j[key].is_string())
    fail(ErrorCode::kTokenizer, where + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

bool bool_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return false;
  if (!j[key].is_boolean())
    fail(ErrorCode::kTokenizer, where + ": \"" + key + "\" must be a boolean");
  return j[key].get<bool>();
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, std::string_view source, size_t max_id) {
  const std::string where = std::string(source) + ": model";
  if (!model.is_object()) fail(ErrorCode::kTokenizer, where + ": missing or not an object");
  const std::string type = string_field(model, "type", where);
  if (type != "BPE" && !(type.empty() && model.contains("merges"))) {
    fail(ErrorCode::kTokenizer, where + ": unsupported model type \"" + type + "\" (only BPE)");
  }
  if (bool_field(model, "byte_fallback", where)) {
    fail(ErrorCode::kTokenizer, where + ": byte_fallback BPE is not supported");
  }
  if (!string_field(model, "continuing_subword_prefix", where).empty() ||
      !string_field(model, "end_of_word_suffix", where).empty()) {
    fail(ErrorCode::kTokenizer,
         where + ": continuing_subword_prefix/end_of_word_suffix unsupported");
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0)) {
    fail(ErrorCode::kTokenizer, where + ": BPE dropout is not supported");
  }
  fuse_unk_ = bool_field(model, "fuse_unk", where);
  ignore_merges_ = bool_field(model, "ignore_merges", where);
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    fail(ErrorCode::kTokenizer, where + ".vocab: missing or not an object");
  }
  load_vocab(model["vocab"], where + ".vocab", max_id);
  const std::string unk = string_field(model, "unk_token", where);
  if (!unk.empty()) {
    auto it = vocab_.find(unk);
    if (it == vocab_.end())
      fail(ErrorCode::kTokenizer,
           where + ".unk_token " + describe(unk) + " is not in the vocabulary");
    unk_id_ = it->second;
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    fail(ErrorCode::kTokenizer, where + ".merges: missing or not an array");
  }
  load_merges(model["merges"], where + ".merges");
}

void BpeModel::load_vocab(const nlohmann::json& vocab, const std::string& where, size_t max_id) {
  byte_ids_.fill(-1);
  if (vocab.size() > kMaxVocabEntries) {
    fail(ErrorCode::kTokenizer,
         where + ": more than " + std::to_string(kMaxVocabEntries) + " entries");
  }
  vocab_.reserve(vocab.size());
  for (const auto& [token, value] : vocab.items()) {
    if (!value.is_number_unsigned() || value.get<uint64_t>() >= max_id) {
      fail(ErrorCode::kTokenizer, where + ": token " + describe(token) +
                                      " has an id that is not an integer in [0, " +
                                      std::to_string(max_id) + ")");
    }
    const auto id = static_cast<uint32_t>(value.get<uint64_t>());
    if (id >= id_to_token_.size()) {
      id_to_token_.resize(id + 1);
      id_present_.resize(id + 1, false);
    }
    if (id_present_[id]) {
      fail(ErrorCode::kTokenizer, where + ": id " + std::to_string(id) + " is used by both " +
                                      describe(id_to_token_[id]) + " and " + describe(token));
    }
    id_present_[id] = true;
    id_to_token_[id] = token;
    vocab_.emplace(token, id);
    if (auto bytes = byte_level_to_bytes(token)) {
      if (bytes->size() == 1) byte_ids_[static_cast<uint8_t>((*bytes)[0])] = id;
      bytes_vocab_.emplace(std::move(*bytes), id);
    }
  }
}

void BpeModel::load_merges(const nlohmann::json& merges, const std::string& where) {
  if (merges.size() > kMaxMerges) {
    fail(ErrorCode::kTokenizer, where + ": more than " + std::to_string(kMaxMerges) + " merges");
  }
  merges_.reserve(merges.size());
  const auto lookup = [&](const std::string& token, size_t rank) {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) {
      fail(ErrorCode::kTokenizer, where + "[" + std::to_string(rank) + "]: token " +
                                      describe(token) + " is not in the vocabulary");
    }
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        fail(ErrorCode::kTokenizer,
             where + "[" + std::to_string(rank) + "]: expected \"a b\" with exactly one space");
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(ErrorCode::kTokenizer,
           where + "[" + std::to_string(rank) + "]: expected a string \"a b\" or a pair [a, b]");
    }
    const uint32_t a_id = lookup(a, rank), b_id = lookup(b, rank), new_id = lookup(a + b, rank);
    // As in HF, a repeated pair keeps the rank of its last occurrence.
    merges_[pair_key(a_id, b_id)] = {static_cast<uint32_t>(rank), new_id};
  }
}

std::optional<uint32_t> BpeModel::token_to_id(std::string_view spelling) const {
  auto it = vocab_.find(spelling);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(uint32_t id) const {
  return id < id_present_.size() && id_present_[id] ? &id_to_token_[id] : nullptr;
}

void BpeModel::encode_word(std::string_view bytes, std::vector<uint32_t>& out) const {
  if (bytes.empty()) return;
  if (ignore_merges_ || bytes.size() == 1) {
    auto it = bytes_vocab_.find(bytes);
    if (it != bytes_vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (bytes.size() >= kCacheMaxWordBytes) {
    merge_word(bytes, out);
    return;
  }
  CacheShard& shard = cache_[StringHash{}(bytes) % kCacheShards];
  {
    std::lock_guard lock(shard.mutex);
    auto it = shard.words.find(bytes);
    if (it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(bytes, out);
  std::vector<uint32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  std::lock_guard lock(shard.mutex);
  if (shard.words.size() >= kCacheMaxEntriesPerShard) shard.words.clear();  // bounded
  shard.words.emplace(std::string(bytes), std::move(ids));
}

void BpeModel::merge_word(std::string_view bytes, std::vector<uint32_t>& out) const {
  struct Symbol {
    uint32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  bool last_was_unk = false;
  for (const char ch : bytes) {
    const int64_t id = byte_ids_[static_cast<uint8_t>(ch)];
    if (id >= 0) {
      symbols.push_back({static_cast<uint32_t>(id), 0, 0, true});
      last_was_unk = false;
    } else if (unk_id_ && !(fuse_unk_ && last_was_unk)) {
      symbols.push_back({*unk_id_, 0, 0, true});  // unknown byte; fused runs share one unk
      last_was_unk = true;
    }
  }
  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto consider = [&](int32_t pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    auto it = merges_.find(pair_key(symbols[pos].id, symbols[symbols[pos].next].id));
    if (it != merges_.end()) {
      queue.push({it->second.rank, static_cast<uint32_t>(pos), it->second.new_id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.pos];
    if (!left.alive || left.next < 0) continue;
    // Stale entry: the pair at this position changed since it was queued.
    auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.new_id != c.new_id) continue;
    Symbol& right = symbols[left.next];
    left.id = c.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(c.pos);
    consider(left.prev);
    consider(static_cast<int32_t>(c.pos));
  }
  for (int32_t i = 0; i < n; ++i) {
    if (symbols[i].alive) out.push_back(symbols[i].id);
  }
}

}  // namespace autoglm::tok
