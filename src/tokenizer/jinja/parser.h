// Jinja parser: tokens -> AST for the subset documented in chat_template.h. Refuses
// include/import/extends/block (no file access in the sandbox) with a clear error.
// Thread ownership: none (pure function).
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace autoglm::jinja {

struct ParseLimits {
  size_t max_nesting = 64;  // nested blocks and expression depth
};

// Throws Error(kTemplate, "<name>:<line>:<col>: ...").
Body parse_template(const LexResult& lexed, std::string_view name, const ParseLimits& limits);

}  // namespace autoglm::jinja
