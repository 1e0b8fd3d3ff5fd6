// Unit tests for the streaming detokenizer: multi-byte characters split across tokens are held
// back, impossible sequences become U+FFFD, and the pieces always concatenate to decode().
#include <gtest/gtest.h>

#include <random>

#include "test_helpers.h"
#include "tokenizer/detokenizer.h"

namespace autoglm {
namespace {

using Ids = std::vector<uint32_t>;

std::string stream_all(const Tokenizer& t, const Ids& ids, bool skip,
                       std::vector<std::string>* pieces = nullptr) {
  IncrementalDetokenizer d(t, skip);
  std::string out;
  for (const uint32_t id : ids) {
    std::string piece = d.push(id);
    if (pieces) pieces->push_back(piece);
    out += piece;
  }
  out += d.finish();
  return out;
}

TEST(Detokenizer, HoldsBackSplitCharacters) {
  const Tokenizer t = test::load(test::tiny_tokenizer_json({}));
  IncrementalDetokenizer d(t, false);
  // "中" = E4 B8 AD, one byte per token in this vocabulary.
  EXPECT_EQ(d.push('a'), "a");
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.pending_bytes(), 1u);
  EXPECT_EQ(d.push(0xB8), "");
  EXPECT_EQ(d.push(0xAD), "\xE4\xB8\xAD");
  EXPECT_EQ(d.pending_bytes(), 0u);
  // An emoji (4 bytes) followed by an interrupted one that is flushed as U+FFFD.
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push(0x9F), "");
  EXPECT_EQ(d.push(0x98), "");
  EXPECT_EQ(d.push(0x80), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push('x'), "\xEF\xBF\xBDx");  // the broken lead can never complete
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.finish(), "\xEF\xBF\xBD");
}

TEST(Detokenizer, SkipsSpecialTokensWhenAsked) {
  auto j = test::tiny_tokenizer_json({});
  test::add_token(j, 300, "<|im_end|>", true);
  const Tokenizer t = test::load(j);
  EXPECT_EQ(stream_all(t, {'h', 300, 'i'}, true), "hi");
  EXPECT_EQ(stream_all(t, {'h', 300, 'i'}, false), "h<|im_end|>i");
}

TEST(Detokenizer, StreamEqualsDecodeOnRealisticText) {
  const Tokenizer t = Tokenizer::load(test::fixture("llama3_style.json"));
  const std::string text =
      "Hello 世界! 👩‍💻 naïve café, ệ 한국어 <|eot_id|> 123456789\n\tend";
  EncodeOptions opts{SpecialTokenPolicy::kAll, {}, true};
  const Ids ids = t.encode(text, opts);
  std::vector<std::string> pieces;
  EXPECT_EQ(stream_all(t, ids, false, &pieces), t.decode(ids));
  EXPECT_EQ(stream_all(t, ids, true), t.decode(ids, true));
  for (const auto& p : pieces) {
    // Every emitted piece is valid UTF-8 on its own.
    std::string copy;
    tok::append_utf8_lossy(copy, p);
    EXPECT_EQ(copy, p);
  }
}

TEST(Detokenizer, StreamEqualsDecodeOnRandomIds) {
  const Tokenizer t = Tokenizer::load(test::fixture("glm4_style.json"));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(t.vocab_size() + 3));
  for (int round = 0; round < 500; ++round) {
    Ids ids(rng() % 40);
    for (auto& id : ids) id = pick(rng);
    const bool skip = round % 2 == 0;
    ASSERT_EQ(stream_all(t, ids, skip), t.decode(ids, skip)) << "round " << round;
  }
}

}  // namespace
}  // namespace autoglm
