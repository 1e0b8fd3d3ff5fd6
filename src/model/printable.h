// Makes untrusted names (tensor names, dtype strings, shard names from hostile files) safe to
// put inside one-line error messages: control characters are escaped and long names are cut,
// so a crafted name cannot forge extra log/stderr lines. Thread ownership: none (pure).
#pragma once

#include <string>
#include <string_view>

namespace autoglm {

inline constexpr size_t kMaxPrintableName = 200;

inline std::string printable(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxPrintableName; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxPrintableName) out += "...";
  return out;
}

}  // namespace autoglm
