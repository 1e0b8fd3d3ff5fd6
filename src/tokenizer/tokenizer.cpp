// See tokenizer.h.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace autoglm {

using tok::AddedSplit;
using tok::AddedToken;
using tok::AddedTokenMatcher;
using tok::BpeModel;

struct Tokenizer::Impl {
  std::string source;
  tok::Normalizer normalizer;
  tok::PreTokenizer pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::vector<AddedToken> added;                     // as listed in tokenizer.json
  std::unordered_map<uint32_t, size_t> added_by_id;  // id -> index into `added`
  AddedTokenMatcher raw_matcher;                     // tokens with normalized=false
  AddedTokenMatcher normalized_matcher;              // tokens with normalized=true
  std::vector<std::string> normalized_contents;      // backing store for normalized_matcher
  std::vector<AddedToken> normalized_tokens;
  std::vector<uint32_t> prefix_ids, suffix_ids;  // post-processor, single sequence
  bool decoder_joins_with_space = false;         // no decoder: HF joins tokens with " "
  std::vector<std::string> decoded;              // per id: decoder bytes
  std::vector<bool> known;                       // per id: has a token
  size_t id_end = 0;
};

namespace {

[[noreturn]] void fail_at(const std::string& where, const std::string& what) {
  fail(ErrorCode::kTokenizer, where + ": " + what);
}

// Depth-limited parse into an unordered nlohmann::json: tokenizer.json vocabularies have
// ~150k keys, which ordered_json (linear key search on insert) cannot parse in useful time.
nlohmann::json parse_tokenizer_json(std::string_view text, const std::string& source) {
  constexpr int kMaxDepth = 64;
  int depth = 0;
  bool too_deep = false;
  auto limiter = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json&) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start || ev == E::array_start) {
      if (++depth > kMaxDepth) too_deep = true;
    } else if (ev == E::object_end || ev == E::array_end) {
      --depth;
    }
    return !too_deep;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), limiter, true, false);
  } catch (const nlohmann::json::exception& e) {
    fail_at(source, std::string("malformed JSON (or not UTF-8): ") + e.what());
  }
  if (too_deep) fail_at(source, "JSON nested deeper than " + std::to_string(kMaxDepth));
  if (!j.is_object()) fail_at(source, "top level is not a JSON object");
  return j;
}

bool flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail_at(where, std::string("\"") + key + "\" must be a boolean");
  return j[key].get<bool>();
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& j, const std::string& where,
                                           size_t max_id) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) fail_at(where, "not an array");
  // Bounds the added-token trie (one node per content byte) on hostile files.
  constexpr size_t kMaxTotalContentBytes = size_t{8} << 20;
  size_t total_bytes = 0;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto& t = j[i];
    if (!t.is_object() || !t.contains("id") || !t.contains("content")) {
      fail_at(at, "expected an object with \"id\" and \"content\"");
    }
    if (!t["id"].is_number_unsigned() || t["id"].get<uint64_t>() >= max_id) {
      fail_at(at, "id is not an integer in [0, " + std::to_string(max_id) + ")");
    }
    if (!t["content"].is_string() || t["content"].get_ref<const std::string&>().empty() ||
        t["content"].get_ref<const std::string&>().size() > 4096) {
      fail_at(at, "content must be a non-empty string of at most 4096 bytes");
    }
    AddedToken a;
    a.id = static_cast<uint32_t>(t["id"].get<uint64_t>());
    a.content = t["content"].get<std::string>();
    total_bytes += a.content.size();
    if (total_bytes > kMaxTotalContentBytes) fail_at(at, "added tokens exceed 8 MiB in total");
    a.special = flag(t, "special", false, at);
    a.single_word = flag(t, "single_word", false, at);
    a.lstrip = flag(t, "lstrip", false, at);
    a.rstrip = flag(t, "rstrip", false, at);
    a.normalized = flag(t, "normalized", !a.special, at);
    out.push_back(std::move(a));
  }
  return out;
}

// Resolves TemplateProcessing's "single" template into the ids around the sequence.
void parse_template(const nlohmann::json& p, const std::string& where, Tokenizer::Impl& impl) {
  if (!p.contains("single") || !p["single"].is_array()) fail_at(where, "missing \"single\"");
  const nlohmann::json specials = p.value("special_tokens", nlohmann::json::object());
  std::vector<uint32_t> before, after;
  bool seen_sequence = false;
  for (const auto& piece : p["single"]) {
    if (piece.is_object() && piece.contains("Sequence")) {
      const auto& seq = piece["Sequence"];
      if (!seq.is_object() || seq.value("id", nlohmann::json()) != "A" || seen_sequence) {
        fail_at(where, "the single template must contain sequence A exactly once");
      }
      seen_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken") &&
               piece["SpecialToken"].is_object() && piece["SpecialToken"].contains("id") &&
               piece["SpecialToken"]["id"].is_string()) {
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      if (!specials.is_object() || !specials.contains(name) || !specials[name].is_object() ||
          !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
        fail_at(where,
                "special token \"" + name + "\" has no entry with \"ids\" in special_tokens");
      }
      for (const auto& id : specials[name]["ids"]) {
        if (!id.is_number_unsigned() || id.get<uint64_t>() >= impl.id_end) {
          fail_at(where, "special token \"" + name + "\" has an id out of range");
        }
        (seen_sequence ? after : before).push_back(static_cast<uint32_t>(id.get<uint64_t>()));
      }
    } else {
      fail_at(where, "unsupported template piece " + piece.dump().substr(0, 80));
    }
  }
  if (!seen_sequence) fail_at(where, "the single template has no sequence A");
  // A later processor wraps the output of the earlier ones.
  impl.prefix_ids.insert(impl.prefix_ids.begin(), before.begin(), before.end());
  impl.suffix_ids.insert(impl.suffix_ids.end(), after.begin(), after.end());
}

void parse_post_processor(const nlohmann::json& p, const std::string& where, Tokenizer::Impl& impl,
                          int depth) {
  if (p.is_null()) return;
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string() || depth > 8) {
    fail_at(where, "expected an object with a string \"type\"");
  }
  const std::string type = p["type"].get<std::string>();
  if (type == "ByteLevel") return;  // only adjusts offsets, which we do not report
  if (type == "TemplateProcessing") return parse_template(p, where + " TemplateProcessing", impl);
  if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
    for (const auto& child : p["processors"]) parse_post_processor(child, where, impl, depth + 1);
    return;
  }
  fail_at(where, "unsupported post_processor type \"" + type + "\"");
}

// Returns true when the decoder is ByteLevel (possibly inside a Sequence), false for null.
bool parse_decoder(const nlohmann::json& d, const std::string& where) {
  if (d.is_null()) return false;
  if (!d.is_object() || !d.contains("type") || !d["type"].is_string()) {
    fail_at(where, "expected an object with a string \"type\"");
  }
  const std::string type = d["type"].get<std::string>();
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && d.contains("decoders") && d["decoders"].is_array() &&
      d["decoders"].size() == 1) {
    return parse_decoder(d["decoders"][0], where);
  }
  fail_at(where, "unsupported decoder type \"" + type + "\" (only ByteLevel)");
}

void register_added_tokens(Tokenizer::Impl& impl, const std::string& where) {
  std::unordered_map<std::string, uint32_t> by_content;
  std::vector<const AddedToken*> raw;
  for (size_t i = 0; i < impl.added.size(); ++i) {
    const AddedToken& a = impl.added[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto [it, fresh] = impl.added_by_id.emplace(a.id, i);
    if (!fresh && impl.added[it->second].content != a.content) {
      fail_at(at, "id " + std::to_string(a.id) + " is already used by another added token");
    }
    const auto [cit, cfresh] = by_content.emplace(a.content, a.id);
    if (!cfresh && cit->second != a.id) fail_at(at, "content repeated with a different id");
    const auto vocab_id = impl.model->token_to_id(a.content);
    if (vocab_id && *vocab_id != a.id) fail_at(at, "content is in the vocabulary with another id");
    const std::string* vocab_token = impl.model->id_to_token(a.id);
    if (vocab_token && *vocab_token != a.content) {
      fail_at(at, "id " + std::to_string(a.id) + " belongs to another vocabulary token");
    }
    if (!a.normalized) raw.push_back(&a);
  }
  impl.raw_matcher = AddedTokenMatcher(std::move(raw));
  // Normalized tokens are matched in their normalized form, after the text is normalized.
  for (const AddedToken& a : impl.added) {
    if (!a.normalized) continue;
    AddedToken n = a;
    n.content = impl.normalizer.normalize(a.content);
    impl.normalized_tokens.push_back(std::move(n));
  }
  std::vector<const AddedToken*> normalized;
  for (const AddedToken& a : impl.normalized_tokens) normalized.push_back(&a);
  impl.normalized_matcher = AddedTokenMatcher(std::move(normalized));
}

void build_decode_table(Tokenizer::Impl& impl, bool byte_level_decoder) {
  impl.decoded.assign(impl.id_end, {});
  impl.known.assign(impl.id_end, false);
  const auto set = [&](uint32_t id, const std::string& token) {
    impl.known[id] = true;
    if (!byte_level_decoder) {
      impl.decoded[id] = token;
      return;
    }
    // HF's ByteLevel decoder: a token made only of alphabet characters becomes its bytes;
    // any other token passes through as its own UTF-8.
    auto bytes = tok::byte_level_to_bytes(token);
    impl.decoded[id] = bytes ? std::move(*bytes) : token;
  };
  for (uint32_t id = 0; id < impl.model->id_end(); ++id) {
    if (const std::string* t = impl.model->id_to_token(id)) set(id, *t);
  }
  for (const AddedToken& a : impl.added) set(a.id, a.content);
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  std::string file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    file = (std::filesystem::path(path) / "tokenizer.json").string();
  const std::string text = read_file_capped(file, kMaxFileBytes);
  return from_json_text(text, file);
}

Tokenizer Tokenizer::from_json_text(std::string_view json_text, std::string_view source_name) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(source_name);
  const std::string& src = impl->source;
  const nlohmann::json j = parse_tokenizer_json(json_text, src);
  if (j.contains("version") && j["version"] != "1.0")
    fail_at(src, "unknown \"version\" (want \"1.0\")");
  const nlohmann::json null_json;
  const auto field = [&](const char* key) -> const nlohmann::json& {
    return j.contains(key) ? j[key] : null_json;
  };
  if (!field("model").is_object() || !field("model").contains("vocab") ||
      !field("model")["vocab"].is_object()) {
    fail_at(src, "model.vocab: missing or not an object");
  }
  const size_t max_id = field("model")["vocab"].size() +
                        (field("added_tokens").is_array() ? field("added_tokens").size() : 0) +
                        BpeModel::kMaxIdSlack;
  impl->normalizer = tok::Normalizer::from_json(field("normalizer"), src);
  impl->pre_tokenizer = tok::PreTokenizer::from_json(field("pre_tokenizer"), src);
  if (!impl->pre_tokenizer.ends_with_byte_level()) {
    fail_at(src, "pre_tokenizer: only byte-level BPE is supported (last step must be ByteLevel)");
  }
  impl->model = std::make_unique<BpeModel>(field("model"), src, max_id);
  impl->added = parse_added_tokens(field("added_tokens"), src + ": added_tokens", max_id);
  register_added_tokens(*impl, src + ": added_tokens");
  impl->id_end = impl->model->id_end();
  for (const AddedToken& a : impl->added) impl->id_end = std::max<size_t>(impl->id_end, a.id + 1);
  parse_post_processor(field("post_processor"), src + ": post_processor", *impl, 0);
  const bool byte_level_decoder = parse_decoder(field("decoder"), src + ": decoder");
  impl->decoder_joins_with_space = !byte_level_decoder;
  build_decode_table(*impl, byte_level_decoder);
  return Tokenizer(std::move(impl));
}

namespace {

// Encodes text that holds no added tokens: pre-tokenize, then BPE each piece.
void encode_plain(const Tokenizer::Impl& impl, std::string_view text, std::vector<uint32_t>& out) {
  thread_local std::vector<std::string_view> pieces;
  std::deque<std::string> storage;
  pieces.clear();
  impl.pre_tokenizer.pre_tokenize(text, pieces, storage);
  for (const std::string_view piece : pieces) impl.model->encode_word(piece, out);
}

bool overlaps_any(std::span<const ByteRange> ranges, size_t begin, size_t end) {
  for (const ByteRange& r : ranges) {
    // Zero-length ranges still forbid a token that straddles their position.
    if (r.begin < end && begin < std::max(r.end, r.begin + 1)) return true;
  }
  return false;
}

}  // namespace

std::vector<uint32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& impl = *impl_;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8::valid_sequence_length(text, i);
    if (n == 0) {
      fail(ErrorCode::kTokenizer,
           impl.source + ": encode: input is not valid UTF-8 at byte " + std::to_string(i));
    }
    i += n;
  }
  const auto policy = options.special;
  const auto untrusted = options.untrusted;
  if (policy == SpecialTokenPolicy::kExceptUntrusted) {
    for (const ByteRange& r : untrusted) {
      if (r.begin > r.end || r.end > text.size()) {
        fail(ErrorCode::kTokenizer, impl.source + ": encode: untrusted range [" +
                                        std::to_string(r.begin) + ", " + std::to_string(r.end) +
                                        ") lies outside the text");
      }
    }
  }
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 8);
  if (options.add_special_tokens) out = impl.prefix_ids;
  std::vector<AddedSplit> splits;
  impl.raw_matcher.split(
      text,
      [&](size_t b, size_t e) {
        return policy == SpecialTokenPolicy::kAll ||
               (policy == SpecialTokenPolicy::kExceptUntrusted && !overlaps_any(untrusted, b, e));
      },
      splits);
  std::vector<AddedSplit> inner;
  for (const AddedSplit& s : splits) {
    if (s.token_id >= 0) {
      out.push_back(static_cast<uint32_t>(s.token_id));
      continue;
    }
    const std::string_view piece = text.substr(s.begin, s.end - s.begin);
    if (impl.normalizer.is_identity() && impl.normalized_matcher.empty()) {
      encode_plain(impl, piece, out);
      continue;
    }
    const std::string normalized = impl.normalizer.normalize(piece);
    // Offsets inside `normalized` no longer map to the input, so special tokens are allowed
    // here only if the whole piece is trusted.
    const bool piece_trusted =
        policy == SpecialTokenPolicy::kAll || (policy == SpecialTokenPolicy::kExceptUntrusted &&
                                               !overlaps_any(untrusted, s.begin, s.end));
    inner.clear();
    impl.normalized_matcher.split(
        normalized, [&](size_t, size_t) { return piece_trusted; }, inner);
    for (const AddedSplit& n : inner) {
      if (n.token_id >= 0)
        out.push_back(static_cast<uint32_t>(n.token_id));
      else
        encode_plain(impl, std::string_view(normalized).substr(n.begin, n.end - n.begin), out);
    }
  }
  if (options.add_special_tokens)
    out.insert(out.end(), impl.suffix_ids.begin(), impl.suffix_ids.end());
  return out;
}

std::string Tokenizer::decode(std::span<const uint32_t> ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string bytes;
  bool first = true;
  for (const uint32_t id : ids) {
    if (id >= impl.id_end || !impl.known[id]) continue;
    if (skip_special_tokens && is_special(id)) continue;
    if (impl.decoder_joins_with_space && !first) bytes.push_back(' ');
    bytes += impl.decoded[id];
    first = false;
  }
  if (impl.decoder_joins_with_space) return bytes;  // tokens are UTF-8 already
  std::string text;
  text.reserve(bytes.size());
  tok::append_utf8_lossy(text, bytes);
  return text;
}

std::optional<uint32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& a : impl_->added) {
    if (a.content == token) return a.id;
  }
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(uint32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  if (const std::string* t = impl_->model->id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(uint32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

size_t Tokenizer::vocab_size() const {
  return impl_->id_end;
}

std::optional<std::string_view> Tokenizer::decoder_bytes(uint32_t id) const {
  if (id >= impl_->id_end || !impl_->known[id]) return std::nullopt;
  return impl_->decoded[id];
}

bool Tokenizer::decoder_joins_with_space() const {
  return impl_->decoder_joins_with_space;
}

}  // namespace autoglm
