// Jinja lexer (see lexer.h). Mirrors jinja2's rules: `{%-`/`-%}` strip all whitespace on that
// side; lstrip_blocks removes spaces/tabs before a block or comment tag that starts a line;
// trim_blocks removes one newline after `%}`/`#}`; `+` opts a tag out of both.
// Thread ownership: none.
#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"
#include "core/utf8.h"

namespace autoglm::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

class Lexer {
 public:
  Lexer(std::string src, std::string_view name) : src_(std::move(src)), name_(name) {}

  LexResult run() {
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      std::string text = src_.substr(pos_, tag - pos_);
      if (tag == src_.size()) {
        emit_text(std::move(text), pos_);
        break;
      }
      const char kind = src_[tag + 1];
      const size_t after_open = tag + 2;
      const char sign = after_open < src_.size() ? src_[after_open] : '\0';
      apply_left_strip(text, sign, kind != '{');
      emit_text(std::move(text), pos_);
      pos_ = after_open + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        lex_comment(tag);
      } else if (kind == '%' && try_raw(tag)) {
        continue;
      } else {
        lex_tag(kind, tag);
      }
    }
    out_.push_back(Token{TokType::kEof, "", 0});
    set_position(out_.back(), src_.size());
    return LexResult{std::move(src_), std::move(out_)};
  }

 private:
  std::string src_;
  std::string_view name_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;

  [[noreturn]] void error_at(size_t offset, const std::string& what) const {
    fail(ErrorCode::kTemplate, source_position(src_, name_, offset) + ": " + what);
  }

  void set_position(Token& t, size_t offset) const { t.offset = offset; }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return src_.size();
  }

  void apply_left_strip(std::string& text, char sign, bool block_like) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      text.resize(end);
    } else if (sign != '+' && block_like) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        const bool only_ws =
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(l_pos), text.end(), is_space);
        if (only_ws) text.resize(l_pos);
      }
    }
  }

  void emit_text(std::string text, size_t offset) {
    if (text.empty()) return;
    Token t{TokType::kText, std::move(text)};
    set_position(t, offset);
    out_.push_back(std::move(t));
  }

  void emit(TokType type, std::string text, size_t offset) {
    Token t{type, std::move(text)};
    set_position(t, offset);
    out_.push_back(std::move(t));
  }

  // After a `%}` or `#}` end marker at `end` (index just past it), applies the right side rule.
  void finish_tag(char sign, size_t end) {
    if (sign == '-') {
      while (end < src_.size() && is_space(src_[end])) ++end;
    } else if (sign != '+' && end < src_.size() && src_[end] == '\n') {
      ++end;  // trim_blocks
    }
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  void lex_comment(size_t tag) {
    for (size_t i = pos_; i + 1 < src_.size(); ++i) {
      if (src_[i] == '#' && src_[i + 1] == '}') {
        const char sign = i > pos_ ? src_[i - 1] : '\0';
        finish_tag(sign == '-' || sign == '+' ? sign : '\0', i + 2);
        return;
      }
    }
    error_at(tag, "missing end of comment tag");
  }

  // `{% raw %}...{% endraw %}`: the body is text, untouched.
  bool try_raw(size_t tag) {
    size_t i = pos_;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0 || (i + 3 < src_.size() && is_name_char(src_[i + 3])))
      return false;
    i += 3;
    while (i < src_.size() && is_space(src_[i])) ++i;
    const bool strip = src_.compare(i, 3, "-%}") == 0;
    if (!strip && src_.compare(i, 2, "%}") != 0) return false;
    size_t body = i + (strip ? 3 : 2);
    if (strip) {
      while (body < src_.size() && is_space(src_[body])) ++body;
    }
    for (size_t j = body; j + 1 < src_.size(); ++j) {
      if (src_[j] != '{' || src_[j + 1] != '%') continue;
      size_t k = j + 2;
      const char sign = k < src_.size() && (src_[k] == '-' || src_[k] == '+') ? src_[k++] : '\0';
      while (k < src_.size() && is_space(src_[k])) ++k;
      if (src_.compare(k, 6, "endraw") != 0) continue;
      k += 6;
      while (k < src_.size() && is_space(src_[k])) ++k;
      char end_sign = '\0';
      if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) end_sign = src_[k++];
      if (src_.compare(k, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, j - body);
      apply_left_strip(text, sign, true);
      emit_text(std::move(text), body);
      finish_tag(end_sign, k + 2);
      return true;
    }
    error_at(tag, "missing end of raw directive");
  }

  void lex_tag(char kind, size_t tag) {
    emit(kind == '{' ? TokType::kVarBegin : TokType::kBlockBegin, "", tag);
    std::vector<char> balance;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        error_at(tag, kind == '{' ? "unexpected end of template, expected '}}'"
                                  : "unexpected end of template, expected '%}'");
      if (balance.empty() && try_tag_end(kind)) return;
      lex_expr_token(balance);
    }
  }

  bool try_tag_end(char kind) {
    const char closer = kind == '{' ? '}' : '%';
    const size_t p = pos_;
    char sign = '\0';
    size_t q = p;
    if ((src_[q] == '-' || (src_[q] == '+' && kind == '%')) && q + 1 < src_.size() &&
        src_[q + 1] == closer)
      sign = src_[q++];
    if (q + 1 >= src_.size() || src_[q] != closer || src_[q + 1] != '}') return false;
    emit(kind == '{' ? TokType::kVarEnd : TokType::kBlockEnd, "", p);
    if (kind == '{') {
      size_t end = q + 2;
      if (sign == '-') {
        while (end < src_.size() && is_space(src_[end])) ++end;
      }
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
    } else {
      finish_tag(sign, q + 2);
    }
    return true;
  }

  void lex_expr_token(std::vector<char>& balance) {
    const size_t start = pos_;
    const char c = src_[pos_];
    if (is_name_start(c)) {
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      emit(TokType::kName, src_.substr(start, pos_ - start), start);
    } else if (is_digit(c)) {
      lex_number(start);
    } else if (c == '\'' || c == '"') {
      lex_string(start);
    } else {
      lex_operator(start, balance);
    }
  }

  void lex_number(size_t start) {
    auto digits = [&] {
      while (pos_ < src_.size() &&
             (is_digit(src_[pos_]) ||
              (src_[pos_] == '_' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1]))))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        is_float = true;
        pos_ = q;
        digits();
      }
    }
    std::string text = src_.substr(start, pos_ - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    emit(is_float ? TokType::kFloat : TokType::kInt, std::move(text), start);
  }

  void lex_string(size_t start) {
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) error_at(start, "unterminated string");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos_ >= src_.size()) error_at(start, "unterminated string");
      decode_escape(value, start);
    }
    emit(TokType::kString, std::move(value), start);
  }

  // Python's unicode-escape decoding, which jinja2 applies to string literals.
  void decode_escape(std::string& value, size_t start) {
    const char e = src_[pos_++];
    switch (e) {
      case 'n':
        value += '\n';
        return;
      case 't':
        value += '\t';
        return;
      case 'r':
        value += '\r';
        return;
      case '\\':
        value += '\\';
        return;
      case '\'':
        value += '\'';
        return;
      case '"':
        value += '"';
        return;
      case 'a':
        value += '\a';
        return;
      case 'b':
        value += '\b';
        return;
      case 'f':
        value += '\f';
        return;
      case 'v':
        value += '\v';
        return;
      case '\n':
        return;
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      unsigned v = static_cast<unsigned>(e - '0');
      for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
        v = v * 8 + static_cast<unsigned>(src_[pos_++] - '0');
      utf8::append(value, static_cast<char32_t>(v));
      return;
    }
    const int hex_len = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (hex_len == 0) {
      value += '\\';
      value += e;
      return;
    }
    uint32_t cp = 0;
    for (int k = 0; k < hex_len; ++k) {
      if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
        error_at(start, "truncated \\" + std::string(1, e) + " escape in string");
      const char h = src_[pos_++];
      cp = cp * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      error_at(start, "invalid code point escape in string");
    utf8::append(value, static_cast<char32_t>(cp));
  }

  void lex_operator(size_t start, std::vector<char>& balance) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        pos_ += 2;
        emit(TokType::kOp, op, start);
        return;
      }
    }
    const char c = src_[pos_];
    if (std::strchr("+-/*%~[](){}=.:|,;<>", c) == nullptr)
      error_at(start, std::string("unexpected character '") + c + "'");
    if (c == '(' || c == '[' || c == '{') balance.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      const char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (balance.empty() || balance.back() != want)
        error_at(start, std::string("unexpected '") + c + "'");
      balance.pop_back();
    }
    ++pos_;
    emit(TokType::kOp, std::string(1, c), start);
  }
};

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

}  // namespace

LexResult lex_template(std::string_view source, std::string_view name) {
  return Lexer(normalize_newlines(source), name).run();
}

std::string source_position(std::string_view source, std::string_view name, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++col;  // count code points, not bytes
    }
  }
  return std::string(name) + ":" + std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace autoglm::jinja
