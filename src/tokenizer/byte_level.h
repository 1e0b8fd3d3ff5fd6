// Byte-level BPE alphabet (GPT-2 style): the reversible map between the 256 byte values and
// 256 printable code points that byte-level vocabularies are written in, plus the lossy UTF-8
// conversion HF decoders apply at the end (maximal invalid subparts become U+FFFD).
// Thread ownership: none (pure functions over constant tables).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace autoglm::tok {

// The code point that stands for byte `b` in byte-level vocabularies.
char32_t byte_to_char(uint8_t b);

// The byte that code point `c` stands for, or -1 if `c` is not in the byte-level alphabet.
int char_to_byte(char32_t c);

// Maps raw bytes to their byte-level spelling (UTF-8 of the mapped code points).
std::string bytes_to_byte_level(std::string_view bytes);

// Inverse of bytes_to_byte_level. nullopt if `text` is not valid UTF-8 or uses a code point
// outside the alphabet (such vocabulary entries cannot be produced from byte-level input).
std::optional<std::string> byte_level_to_bytes(std::string_view text);

// Appends `bytes` to `out` as UTF-8, replacing each maximal invalid subpart with U+FFFD
// (the policy of Rust's String::from_utf8_lossy and Python's errors='replace').
void append_utf8_lossy(std::string& out, std::string_view bytes);

// Length of the trailing bytes of `bytes` that form a truncated but still completable UTF-8
// sequence (0..3). Those bytes must be held back when streaming.
size_t incomplete_utf8_suffix(std::string_view bytes);

}  // namespace autoglm::tok
