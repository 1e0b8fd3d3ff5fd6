// ByteRange: a half-open [begin, end) span of bytes in a rendered prompt. The chat template
// renderer reports which spans came from untrusted input (messages, tools, kwargs) so the
// tokenizer matches special tokens only outside them. Thread ownership: none (value type).
#pragma once

#include <cstddef>

namespace autoglm {

struct ByteRange {
  size_t begin = 0;
  size_t end = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

}  // namespace autoglm
