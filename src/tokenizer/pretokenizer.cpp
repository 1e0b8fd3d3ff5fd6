// See pretokenizer.h.
#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace autoglm::tok {
namespace {

// The GPT-2 pre-tokenization regex used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Per-thread PCRE2 match state: match data for one ovector pair and a JIT stack large enough
// for long inputs (the default 32 KiB can run out on pathological whitespace runs).
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

size_t utf8_char_length(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return std::min(n, s.size() - i);
}

SplitBehavior parse_behavior(const nlohmann::json& j, const std::string& where) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  fail(ErrorCode::kTokenizer, where + ": unsupported Split behavior " + j.dump());
}

bool bool_field(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean())
    fail(ErrorCode::kTokenizer, where + ": \"" + key + "\" must be a boolean");
  return j[key].get<bool>();
}

using Span = std::pair<size_t, size_t>;
struct Split {
  Span span;
  bool flag;  // is_match before the behaviour is applied; "remove" after
};

// HF's SplitDelimiterBehavior applied to the (span, is_match) list covering the text.
std::vector<Split> apply_behavior(std::vector<Split> in, SplitBehavior behavior) {
  std::vector<Split> out;
  out.reserve(in.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (auto& s : in) out.push_back({s.span, false});
      return out;
    case SplitBehavior::kRemoved:
      return in;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious:
      for (auto& s : in) {
        const bool merge = behavior == SplitBehavior::kContiguous ? s.flag == previous_match
                                                                  : s.flag && !previous_match;
        if (merge && !out.empty())
          out.back().span.second = s.span.second;
        else
          out.push_back({s.span, false});
        previous_match = s.flag;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = in.rbegin(); it != in.rend(); ++it) {
        if (it->flag && !previous_match && !out.empty())
          out.back().span.first = it->span.first;
        else
          out.push_back({it->span, false});
        previous_match = it->flag;
      }
      return {out.rbegin(), out.rend()};
  }
  return out;
}

}  // namespace

Regex::Regex(std::string_view pattern, bool literal, std::string_view source) : source_(source) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &err, &offset, nullptr);
  if (code == nullptr) {
    fail(ErrorCode::kTokenizer, source_ + ": cannot compile regex at offset " +
                                    std::to_string(offset) + ": " + pcre2_message(err));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if it fails
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  MatchState& st = match_state();
  auto* code = static_cast<pcre2_code*>(code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  size_t last_match_end = SIZE_MAX;
  while (search_from <= text.size()) {
    // Input was validated once at the tokenizer boundary; re-checking per call is quadratic.
    const int rc = pcre2_match(code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, st.data,
                               st.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      fail(ErrorCode::kTokenizer, source_ + ": regex match failed at byte " +
                                      std::to_string(search_from) + ": " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t start = ov[0], end = ov[1];
    if (start == end && end == last_match_end) {
      if (search_from >= text.size()) return;
      search_from += utf8_char_length(text, search_from);
      continue;
    }
    out.emplace_back(start, end);
    search_from = end;
    last_match_end = end;
  }
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, std::string_view source) {
  PreTokenizer p;
  p.append_from_json(j, source, 0);
  return p;
}

void PreTokenizer::append_from_json(const nlohmann::json& j, std::string_view source, int depth) {
  if (j.is_null()) return;
  const std::string where = std::string(source) + ": pre_tokenizer";
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    fail(ErrorCode::kTokenizer, where + ": expected an object with a string \"type\"");
  }
  if (depth > 8) fail(ErrorCode::kTokenizer, where + ": Sequence nested too deeply");
  const std::string type = j["type"].get<std::string>();
  Step step;
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      fail(ErrorCode::kTokenizer, where + ": Sequence without a \"pretokenizers\" array");
    }
    for (const auto& child : j["pretokenizers"]) append_from_json(child, source, depth + 1);
    return;
  }
  if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
    step.add_prefix_space = bool_field(j, "add_prefix_space", true, where);
    if (bool_field(j, "use_regex", true, where)) {
      step.regex = std::make_shared<const Regex>(kGpt2Pattern, false, where + " ByteLevel");
    }
  } else if (type == "Split") {
    const auto& pat = j.contains("pattern") ? j["pattern"] : nlohmann::json();
    const bool is_regex = pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string();
    const bool is_string = pat.is_object() && pat.contains("String") && pat["String"].is_string();
    if (!is_regex && !is_string) {
      fail(ErrorCode::kTokenizer, where + ": Split needs a pattern {\"Regex\"|\"String\": ...}");
    }
    const std::string text = (is_regex ? pat["Regex"] : pat["String"]).get<std::string>();
    step.regex = std::make_shared<const Regex>(text, !is_regex, where + " Split pattern");
    step.behavior = parse_behavior(j.value("behavior", nlohmann::json()), where);
    step.invert = bool_field(j, "invert", false, where);
  } else {
    fail(ErrorCode::kTokenizer, where + ": unsupported pre_tokenizer type \"" + type + "\"");
  }
  if (steps_.size() >= 64) fail(ErrorCode::kTokenizer, where + ": more than 64 steps");
  steps_.push_back(std::move(step));
}

bool PreTokenizer::ends_with_byte_level() const {
  return !steps_.empty() && steps_.back().kind == Step::Kind::kByteLevel;
}

void PreTokenizer::apply_step(const Step& step, std::string_view piece,
                              std::vector<std::string_view>& out,
                              std::deque<std::string>& storage) {
  if (step.kind == Step::Kind::kByteLevel) {
    if (step.add_prefix_space && piece.front() != ' ') {
      storage.emplace_back(1, ' ');
      storage.back().append(piece);
      piece = storage.back();
    }
    if (!step.regex) {
      out.push_back(piece);
      return;
    }
  }
  std::vector<Span> matches;
  step.regex->find_all(piece, matches);
  std::vector<Split> splits;
  splits.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& m : matches) {
    if (prev != m.first) splits.push_back({{prev, m.first}, step.invert});
    splits.push_back({m, !step.invert});
    prev = m.second;
  }
  if (prev != piece.size()) splits.push_back({{prev, piece.size()}, step.invert});
  const SplitBehavior behavior =
      step.kind == Step::Kind::kByteLevel ? SplitBehavior::kIsolated : step.behavior;
  for (const auto& s : apply_behavior(std::move(splits), behavior)) {
    if (!s.flag && s.span.first != s.span.second) {
      out.push_back(piece.substr(s.span.first, s.span.second - s.span.first));
    }
  }
}

void PreTokenizer::pre_tokenize(std::string_view text, std::vector<std::string_view>& out,
                                std::deque<std::string>& storage) const {
  if (text.empty()) return;
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (const Step& step : steps_) {
    // A ByteLevel step without prefix space or regex leaves the pieces unchanged.
    if (step.kind == Step::Kind::kByteLevel && !step.add_prefix_space && !step.regex) continue;
    next.clear();
    for (const auto piece : current) apply_step(step, piece, next, storage);
    current.swap(next);
  }
  out.insert(out.end(), current.begin(), current.end());
}

}  // namespace autoglm::tok
