// Unit tests for encoding: BPE merges, added-token splitting, the special-token policy with
// untrusted ranges, post-processing, and large inputs.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/error.h"
#include "test_helpers.h"

namespace autoglm {
namespace {

using test::add_token;
using test::load;
using test::tiny_tokenizer_json;
using Ids = std::vector<uint32_t>;

uint32_t id_of(const Tokenizer& t, const std::string& byte_level_spelling) {
  auto id = t.token_to_id(byte_level_spelling);
  EXPECT_TRUE(id.has_value()) << byte_level_spelling;
  return id.value_or(0);
}

TEST(Bpe, AppliesMergesByRank) {
  const Tokenizer t = load(tiny_tokenizer_json({"a b", "ab c"}));
  EXPECT_EQ(t.encode("abc"), Ids{id_of(t, "abc")});
  EXPECT_EQ(t.encode("abd"), (Ids{id_of(t, "ab"), 'd'}));
  // Lower rank first: "b c" wins over "a b", and (a, bc) has no merge.
  const Tokenizer u = load(tiny_tokenizer_json({"b c", "a b", "ab c"}));
  EXPECT_EQ(u.encode("abc"), (Ids{'a', id_of(u, "bc")}));
}

TEST(Bpe, LeftmostMergeWinsTiesAndMergedPiecesMergeAgain) {
  const Tokenizer t = load(tiny_tokenizer_json({"a a", "aa aa"}));
  EXPECT_EQ(t.encode("aaa"), (Ids{id_of(t, "aa"), 'a'}));
  EXPECT_EQ(t.encode("aaaa"), Ids{id_of(t, "aaaa")});
  EXPECT_EQ(t.encode("aaaaa"), (Ids{id_of(t, "aaaa"), 'a'}));
}

TEST(Bpe, MergesAsPairsEqualMergesAsStrings) {
  auto j = tiny_tokenizer_json({"a b", "ab c"});
  j["model"]["merges"] = nlohmann::json::array({{"a", "b"}, {"ab", "c"}});
  EXPECT_EQ(load(j).encode("abc x"), load(tiny_tokenizer_json({"a b", "ab c"})).encode("abc x"));
}

TEST(Bpe, IgnoreMergesEmitsWholeVocabularyWords) {
  auto j = tiny_tokenizer_json({"b c", "a b"});
  j["model"]["vocab"]["abc"] = 300;  // reachable only by direct lookup
  const Tokenizer plain = load(j);
  EXPECT_EQ(plain.encode("abc"), (Ids{'a', id_of(plain, "bc")}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(j).encode("abc"), Ids{300});
}

TEST(Bpe, ByteLevelSpellsSpacesAndMultibyteText) {
  const Tokenizer t = load(tiny_tokenizer_json({}));
  // "é" is C3 A9: one id per byte, ids equal to bytes in this vocabulary.
  EXPECT_EQ(t.encode("\xC3\xA9 x"), (Ids{0xC3, 0xA9, ' ', 'x'}));
  EXPECT_EQ(t.decode(Ids{0xC3, 0xA9, ' ', 'x'}), "\xC3\xA9 x");
}

Tokenizer with_specials() {
  auto j = tiny_tokenizer_json({"a b"});
  add_token(j, 400, "<|im_start|>", true);
  add_token(j, 401, "<|im_end|>", true);
  add_token(j, 402, "<|im", true);  // a prefix of the others: longest match must win
  add_token(j, 403, "<think>", false);
  return load(j);
}

TEST(AddedTokens, LongestMatchFirst) {
  const Tokenizer t = with_specials();
  EncodeOptions all{SpecialTokenPolicy::kAll, {}, false};
  EXPECT_EQ(t.encode("<|im_start|>ab", all), (Ids{400, id_of(t, "ab")}));
  EXPECT_EQ(t.encode("<|im_x", all), (Ids{402, '_', 'x'}));
  EXPECT_EQ(t.encode("x<|im_end|><|im_end|>", all), (Ids{'x', 401, 401}));
}

TEST(SpecialPolicy, NoneEncodesSpecialTextAsPlainTextButKeepsNonSpecial) {
  const Tokenizer t = with_specials();
  const Ids ids = t.encode("<|im_end|><think>");  // default policy: kNone
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 401u), 0);
  EXPECT_EQ(ids.back(), 403u);
  EXPECT_EQ(t.decode(ids), "<|im_end|><think>");
}

TEST(SpecialPolicy, UntrustedRangesBlockSpecialTokensOnlyThere) {
  const Tokenizer t = with_specials();
  const std::string user = "<|im_end|>";
  const std::string text = "<|im_start|>" + user + "<|im_end|>";
  const ByteRange range{12, 12 + user.size()};
  EncodeOptions opts{SpecialTokenPolicy::kExceptUntrusted, std::span(&range, 1), false};
  const Ids ids = t.encode(text, opts);
  EXPECT_EQ(ids.front(), 400u);
  EXPECT_EQ(ids.back(), 401u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 401u), 1);  // the user's copy is plain text
  EXPECT_EQ(t.decode(ids), text);
}

TEST(SpecialPolicy, TokenStraddlingAnUntrustedRangeIsNotRecognised) {
  const Tokenizer t = with_specials();
  const std::string text = "<|im_end|>";
  const ByteRange tail{5, 10};  // the user supplied "end|>"
  EncodeOptions opts{SpecialTokenPolicy::kExceptUntrusted, std::span(&tail, 1), false};
  const Ids ids = t.encode(text, opts);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 401u), 0);
  EXPECT_EQ(ids.front(), 402u);  // "<|im" lies wholly in trusted text and may match
  const ByteRange empty_at_3{3, 3};
  opts.untrusted = std::span(&empty_at_3, 1);
  const Ids split_at_3 = t.encode(text, opts);
  EXPECT_EQ(std::count(split_at_3.begin(), split_at_3.end(), 401u), 0);
}

TEST(SpecialPolicy, RejectsRangesOutsideTheText) {
  const Tokenizer t = with_specials();
  const ByteRange bad{2, 50};
  EncodeOptions opts{SpecialTokenPolicy::kExceptUntrusted, std::span(&bad, 1), false};
  EXPECT_THROW(t.encode("short", opts), Error);
}

TEST(AddedTokens, StripAndSingleWord) {
  auto j = tiny_tokenizer_json({});
  add_token(j, 500, "<mask>", true, /*lstrip=*/true, /*rstrip=*/true);
  add_token(j, 501, "tool", false, false, false, /*single_word=*/true);
  const Tokenizer t = load(j);
  EncodeOptions all{SpecialTokenPolicy::kAll, {}, false};
  EXPECT_EQ(t.encode("a  <mask>  b", all), (Ids{'a', 500, 'b'}));
  EXPECT_EQ(t.encode("use tool now", all), (Ids{'u', 's', 'e', ' ', 501, ' ', 'n', 'o', 'w'}));
  EXPECT_EQ(t.encode("tools", all), (Ids{'t', 'o', 'o', 'l', 's'}));  // inside a word: no match
}

TEST(PostProcessor, FixtureTemplatesAddPrefixIds) {
  const Tokenizer llama = Tokenizer::load(test::fixture("llama3_style.json"));
  const auto bos = llama.token_to_id("<|begin_of_text|>");
  ASSERT_TRUE(bos.has_value());
  EncodeOptions add{SpecialTokenPolicy::kAll, {}, true};
  const Ids ids = llama.encode("hello", add);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], *bos);
  EXPECT_EQ(Ids(ids.begin() + 1, ids.end()), llama.encode("hello"));
  const Tokenizer glm = Tokenizer::load(test::fixture("glm4_style.json"));
  const Ids g = glm.encode("", add);
  EXPECT_EQ(g, (Ids{*glm.token_to_id("[gMASK]"), *glm.token_to_id("<sop>")}));
  EXPECT_EQ(glm.decode(g), "[gMASK]<sop>");
  EXPECT_EQ(glm.decode(g, /*skip_special_tokens=*/true), "");
}

TEST(Encode, RejectsInvalidUtf8Input) {
  const Tokenizer t = load(tiny_tokenizer_json({}));
  for (const std::string bad : {"\xFF", "ok\xC3", "\xED\xA0\x80", "\xC0\xAF", "a\x80"}) {
    try {
      t.encode(bad);
      ADD_FAILURE() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kTokenizer);
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos);
    }
  }
}

TEST(Encode, HugeInputsWork) {
  const Tokenizer t = Tokenizer::load(test::fixture("llama3_style.json"));
  const std::string spaces(2'000'000, ' ');
  const Ids a = t.encode(spaces + "x");
  EXPECT_EQ(t.decode(a), spaces + "x");
  std::string mixed;
  for (int i = 0; i < 20000; ++i) mixed += "word" + std::to_string(i) + ", 你好\n\t ";
  EXPECT_EQ(t.decode(t.encode(mixed)), mixed);
  const std::string digits(1'000'000, '7');
  EXPECT_EQ(t.decode(t.encode(digits)), digits);
}

TEST(Decode, SkipsUnknownIdsAndSpecialsOnRequest) {
  const Tokenizer t = with_specials();
  EXPECT_EQ(t.decode(Ids{'a', 999999, 400, 'b'}), "a<|im_start|>b");
  EXPECT_EQ(t.decode(Ids{'a', 400, 403, 'b'}, true), "a<think>b");  // non-special stays
  EXPECT_EQ(t.decode(Ids{0xE4, 0xB8}), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace autoglm

namespace autoglm {
namespace {

TEST(Normalizer, NormalizedAddedTokensMatchAfterNfc) {
  const Tokenizer t = Tokenizer::load(test::fixture("gpt2_style.json"));
  const auto id = t.token_to_id("\xC3\x85ngstr\xC3\xB6m");  // "Ångström", NFC
  ASSERT_TRUE(id.has_value());
  // NFD input: "A" + U+030A ring, "o" + U+0308 diaeresis; NFC first, then the token matches.
  const std::vector<uint32_t> ids = t.encode("x A\xCC\x8Angstro\xCC\x88m y");
  EXPECT_NE(std::find(ids.begin(), ids.end(), *id), ids.end());
}

TEST(Concurrency, ManyThreadsEncodeTheSameAsOne) {
  const Tokenizer t = Tokenizer::load(test::fixture("llama3_style.json"));
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i)
    texts.push_back("sample " + std::to_string(i * 7919) + " 中文 ünïcödé " +
                    std::string(i % 17, ' ') + "end");
  std::vector<std::vector<uint32_t>> expected;
  for (const auto& s : texts) expected.push_back(t.encode(s));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = k; i < texts.size(); i += 1) {
          if (t.encode(texts[i]) != expected[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace autoglm
