// Unit tests for the byte-level alphabet and the lossy UTF-8 conversion.
#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"

namespace autoglm::tok {
namespace {

TEST(ByteLevel, MapIsABijectionWithGpt2Spelling) {
  EXPECT_EQ(byte_to_char(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(byte_to_char('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(byte_to_char('A'), U'A');
  EXPECT_EQ(byte_to_char(0xAD), U'\u0143');  // soft hyphen is remapped
  for (int b = 0; b < 256; ++b) EXPECT_EQ(char_to_byte(byte_to_char(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(char_to_byte(U' '), -1);  // a raw space is not in the alphabet
  EXPECT_EQ(char_to_byte(U'\u4E2D'), -1);
}

TEST(ByteLevel, RoundTripsAllBytes) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string spelled = bytes_to_byte_level(all);
  EXPECT_EQ(byte_level_to_bytes(spelled), all);
  EXPECT_EQ(bytes_to_byte_level("a b"),
            "a\xC4\xA0"
            "b");
  EXPECT_FALSE(byte_level_to_bytes("a b").has_value());   // raw space: not byte-level
  EXPECT_FALSE(byte_level_to_bytes("\xFF").has_value());  // not UTF-8
}

std::string lossy(std::string_view s) {
  std::string out;
  append_utf8_lossy(out, s);
  return out;
}

TEST(ByteLevel, LossyReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("ok \xE4\xB8\xAD"), "ok \xE4\xB8\xAD");
  EXPECT_EQ(lossy("\xE4\xB8"), fffd);  // truncated 3-byte: one U+FFFD
  EXPECT_EQ(lossy("\xE4\xB8"
                  "A"),
            fffd + "A");
  EXPECT_EQ(lossy("\x80\x80"), fffd + fffd);  // stray continuations: one each
  EXPECT_EQ(lossy("\xF0\x9F\x98"), fffd);
  EXPECT_EQ(lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate: lead ends at once
  EXPECT_EQ(lossy("\xC0\xAF"), fffd + fffd);             // overlong
  EXPECT_EQ(lossy("\xF5\x80"), fffd + fffd);
}

TEST(ByteLevel, IncompleteSuffixOnlyForCompletableTails) {
  EXPECT_EQ(incomplete_utf8_suffix(""), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xE4"), 1u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xE4\xB8"), 2u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xE4\xB8\xAD"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_suffix("\xED\xA0"), 0u);  // surrogate prefix can never complete
  EXPECT_EQ(incomplete_utf8_suffix("\x80\x80"), 0u);
}

}  // namespace
}  // namespace autoglm::tok
