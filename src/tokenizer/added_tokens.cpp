// See added_tokens.h.
#include "tokenizer/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/utf8.h"

namespace autoglm::tok {
namespace {

// Rust regex `\w` (Unicode word character), used by single_word.
bool is_word_char(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return c == 0x200C || c == 0x200D;  // Join_Control
  }
}

// Unicode White_Space (Rust regex `\s`), used by lstrip / rstrip.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// The code point that ends just before byte `pos` (text is valid UTF-8), and its start.
char32_t char_before(std::string_view text, size_t pos, size_t* start) {
  size_t i = pos - 1;
  while (i > 0 && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80) --i;
  size_t len = 0;
  *start = i;
  return utf8::decode(text, i, &len);
}

char32_t char_at(std::string_view text, size_t pos, size_t* len) {
  return utf8::decode(text, pos, len);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<const AddedToken*> tokens)
    : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t]->content;
    if (s.empty()) continue;  // HF never matches an empty pattern
    int32_t node = 0;
    for (const char ch : s) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        auto& kids = nodes_[node].children;
        kids.insert(std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1})),
                    {b, next});
        if (node == 0) root_children_[b] = next;
      }
      node = next;
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  if (node == 0) return root_children_[byte];
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
    if (b > byte) break;
  }
  return -1;
}

int32_t AddedTokenMatcher::longest_match(
    std::string_view text, size_t pos,
    const std::function<bool(size_t, size_t)>& special_allowed) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    const int32_t t = nodes_[node].token;
    if (t >= 0 && (!tokens_[t]->special || special_allowed(pos, i + 1))) best = t;
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text,
                              const std::function<bool(size_t, size_t)>& special_allowed,
                              std::vector<AddedSplit>& out) const {
  size_t start_offset = 0;  // end of the previous emitted token
  size_t pos = 0;           // where the next search begins
  while (!tokens_.empty() && pos < text.size()) {
    const int32_t t = root_children_[static_cast<uint8_t>(text[pos])] < 0
                          ? -1
                          : longest_match(text, pos, special_allowed);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = *tokens_[t];
    size_t start = pos, stop = pos + tok.content.size();
    pos = stop;  // like HF, a discarded single_word match still consumes its text
    if (tok.single_word) {
      size_t len = 0, before = 0;
      const bool start_ok = start == 0 || !is_word_char(char_before(text, start, &before));
      const bool stop_ok = stop == text.size() || !is_word_char(char_at(text, stop, &len));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start, before = 0;
      while (s > start_offset && is_white_space(char_before(text, s, &before))) s = before;
      start = s;
    }
    if (tok.rstrip) {
      size_t len = 0;
      while (stop < text.size() && is_white_space(char_at(text, stop, &len))) stop += len;
      pos = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace autoglm::tok
