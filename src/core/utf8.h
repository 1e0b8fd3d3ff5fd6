// UTF-8 helpers used wherever untrusted text enters: validation (no overlongs, no surrogates,
// nothing past U+10FFFF) and decoding one code point. Thread ownership: none (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace autoglm::utf8 {

// Length in bytes of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid/truncated.
size_t valid_sequence_length(std::string_view s, size_t i);

// True if the whole string is well-formed UTF-8.
bool is_valid(std::string_view s);

// Decodes the valid sequence at s[i] (caller checked validity); stores its length in *len.
char32_t decode(std::string_view s, size_t i, size_t* len);

// Appends the UTF-8 encoding of `cp` (which must be a scalar value).
void append(std::string& out, char32_t cp);

// Length of the longest prefix of `s` that ends on a complete code point: the number of
// bytes that can be emitted now without splitting a multi-byte sequence.
size_t complete_prefix_length(std::string_view s);

}  // namespace autoglm::utf8
