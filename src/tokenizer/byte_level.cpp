// See byte_level.h.
#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"

namespace autoglm::tok {
namespace {

struct Alphabet {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 512> to_byte{};  // every mapped code point is below 512

  Alphabet() {
    to_byte.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are shifted to 256 + n in order.
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_char[b] = printable(b) ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

// Bytes a well-formed UTF-8 sequence starting with lead byte `c` has (0: not a lead byte).
size_t sequence_length(uint8_t c) {
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

// Whether `x` may be continuation byte number k (>= 1) after lead byte `c` (excludes overlongs,
// surrogates and code points past U+10FFFF, as Unicode's well-formed table does).
bool continuation_ok(uint8_t c, size_t k, uint8_t x) {
  uint8_t lo = 0x80, hi = 0xBF;
  if (k == 1 && c == 0xE0) lo = 0xA0;
  if (k == 1 && c == 0xED) hi = 0x9F;
  if (k == 1 && c == 0xF0) lo = 0x90;
  if (k == 1 && c == 0xF4) hi = 0x8F;
  return x >= lo && x <= hi;
}

// Length of the valid prefix of a UTF-8 sequence starting at s[i] that is cut off by the end
// of `s` (so more bytes could still complete it); 0 if the bytes are already invalid.
size_t truncated_prefix_length(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  const size_t left = s.size() - i;
  const size_t need = sequence_length(c);
  if (need == 0 || left >= need) return 0;
  for (size_t k = 1; k < left; ++k) {
    if (!continuation_ok(c, k, static_cast<uint8_t>(s[i + k]))) return 0;
  }
  return left;
}

// Length of the maximal invalid subpart at s[i] (at least 1): the lead byte plus the
// continuation bytes that were still acceptable before the sequence broke.
size_t invalid_subpart_length(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  const size_t need = sequence_length(c);
  size_t k = 1;
  while (k < need && i + k < s.size() && continuation_ok(c, k, static_cast<uint8_t>(s[i + k]))) ++k;
  return k;
}

}  // namespace

char32_t byte_to_char(uint8_t b) {
  return alphabet().to_char[b];
}

int char_to_byte(char32_t c) {
  return c < 512 ? alphabet().to_byte[c] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char ch : bytes) utf8::append(out, byte_to_char(static_cast<uint8_t>(ch)));
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (utf8::valid_sequence_length(text, i) == 0) return std::nullopt;
    size_t len = 0;
    const int b = char_to_byte(utf8::decode(text, i, &len));
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return out;
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  size_t run_start = 0;  // start of the current run of valid bytes, copied in one go
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = utf8::valid_sequence_length(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out.append(bytes.substr(run_start, i - run_start));
    out.append("\xEF\xBF\xBD");
    i += invalid_subpart_length(bytes, i);
    run_start = i;
  }
  out.append(bytes.substr(run_start));
}

size_t incomplete_utf8_suffix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const uint8_t c = static_cast<uint8_t>(bytes[i]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for the lead
    return truncated_prefix_length(bytes, i);
  }
  return 0;
}

}  // namespace autoglm::tok
