// Jinja lexer: splits template source into text and tag tokens with jinja2's whitespace rules
// as transformers configures them (trim_blocks, lstrip_blocks, `-`/`+` markers, one trailing
// newline dropped). Thread ownership: none (pure function of the source).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::jinja {

enum class TokType : uint8_t {
  kText,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof
};

struct Token {
  TokType type;
  std::string text;   // decoded value for strings; raw text otherwise
  size_t offset = 0;  // byte offset in the normalized source, for line:column in errors
};

struct LexResult {
  std::string source;  // newline-normalized source that offsets refer to
  std::vector<Token> tokens;
};

// Throws Error(kTemplate, "<name>:<line>:<col>: ...") on malformed input.
LexResult lex_template(std::string_view source, std::string_view name);

// "<name>:<line>:<col>" for a byte offset into `source`.
std::string source_position(std::string_view source, std::string_view name, size_t offset);

}  // namespace autoglm::jinja
