// Stop rules: the stop-string matcher across piece boundaries with hold-back, and the
// StopChecker over a byte-level tokenizer (one token per byte, so every stop string spans
// tokens and multi-byte characters arrive split) and over the glm4-tiny model's tokenizer.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../tokenizer/test_helpers.h"
#include "core/error.h"
#include "runtime/stop_checker.h"

namespace autoglm {
namespace {

struct Streamed {
  std::vector<std::string> pieces;
  std::string text;
  bool matched = false;
};

Streamed stream(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  Streamed out;
  for (const std::string& piece : pieces) {
    StopStringMatcher::Result r = m.push(piece);
    out.pieces.push_back(r.text);
    out.text += r.text;
    out.matched = out.matched || r.matched_index.has_value();
  }
  if (!out.matched) out.text += m.flush();
  return out;
}

TEST(StopStringMatcher, MatchAcrossPiecesIsNotEmitted) {
  StopStringMatcher m({"o w"});
  const Streamed s = stream(m, {"He", "ll", "o", " wor", "ld"});
  EXPECT_TRUE(s.matched);
  EXPECT_EQ(s.text, "Hell");
  EXPECT_EQ(s.pieces, (std::vector<std::string>{"He", "ll", "", "", ""}));
}

TEST(StopStringMatcher, HoldsBackAPartialMatchAndReleasesItOnMismatch) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("abc<").text, "abc");
  EXPECT_EQ(m.held_bytes(), 1u);
  EXPECT_EQ(m.push("/").text, "");
  EXPECT_EQ(m.held_bytes(), 2u);
  const StopStringMatcher::Result r = m.push("x>");
  EXPECT_EQ(r.text, "</x>");
  EXPECT_FALSE(r.matched_index.has_value());
  EXPECT_EQ(m.held_bytes(), 0u);
}

TEST(StopStringMatcher, FlushReturnsHeldTextAtTheEnd) {
  StopStringMatcher m({"STOP"});
  const Streamed s = stream(m, {"go ", "ST", "O"});
  EXPECT_FALSE(s.matched);
  EXPECT_EQ(s.pieces, (std::vector<std::string>{"go ", "", ""}));
  EXPECT_EQ(s.text, "go STO");
}

TEST(StopStringMatcher, OverlappingPrefixKeepsOnlyWhatCanStillMatch) {
  StopStringMatcher m({"aab"});
  const Streamed s = stream(m, {"a", "a", "a", "b", "c"});
  EXPECT_TRUE(s.matched);
  EXPECT_EQ(s.text, "a");
}

TEST(StopStringMatcher, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "lo"});
  const StopStringMatcher::Result r = m.push("hello world");
  ASSERT_TRUE(r.matched_index.has_value());
  EXPECT_EQ(*r.matched_index, 1u);
  EXPECT_EQ(r.text, "hel");
  EXPECT_EQ(m.push("more").text, "");  // spent after a match
}

TEST(StopStringMatcher, StopInsideOnePieceDropsTheRest) {
  StopStringMatcher m({"\n\n"});
  const Streamed s = stream(m, {"line one\n", "\nline two"});
  EXPECT_TRUE(s.matched);
  EXPECT_EQ(s.text, "line one");
}

TEST(StopStringMatcher, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_EQ(m.held_bytes(), 0u);
}

// One token per byte, plus a special <eos> (id 256) that decodes to nothing when skipped.
Tokenizer byte_tokenizer() {
  nlohmann::json j = test::tiny_tokenizer_json({});
  test::add_token(j, 256, "<eos>", /*special=*/true);
  return test::load(j);
}

std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> ids;
  for (const unsigned char c : s) ids.push_back(c);
  return ids;
}

struct CheckerRun {
  std::string text;
  std::optional<FinishReason> finish;
  std::optional<std::string> stop;
  int32_t tokens = 0;
};

CheckerRun run(StopChecker& checker, const std::vector<int32_t>& ids) {
  CheckerRun out;
  for (const int32_t id : ids) {
    StopChecker::Step step = checker.push(id);
    out.text += step.text;
    if (step.finish) {
      out.finish = step.finish;
      out.stop = step.stop;
      break;
    }
  }
  out.tokens = checker.tokens();
  return out;
}

TEST(StopChecker, StopStringAcrossTokensIsNotEmitted) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.max_tokens = 100;
  p.stop_strings = {"END"};
  StopChecker checker(t, p, std::vector<int64_t>{256});
  const CheckerRun r = run(checker, bytes_of("one two ENDthree"));
  EXPECT_EQ(r.text, "one two ");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop, "END");
  EXPECT_EQ(r.tokens, 11);  // the stream stops at the token that completes the stop string
}

TEST(StopChecker, StopStringWithASplitMultiByteCharacter) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.max_tokens = 100;
  p.stop_strings = {"\xE4\xB8\xAD!"};  // "中!": four byte tokens
  StopChecker checker(t, p, {});
  std::vector<std::string> pieces;
  std::string text;
  for (const int32_t id : bytes_of("a\xE4\xB8\xAD\xE4\xB8\xAD!b")) {
    const StopChecker::Step step = checker.push(id);
    text += step.text;
    if (step.finish) break;
  }
  EXPECT_EQ(text, "a\xE4\xB8\xAD");
  EXPECT_TRUE(checker.finished());
}

TEST(StopChecker, EosAndUserStopTokensFinishWithStop) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.max_tokens = 100;
  p.stop_token_ids = {'#'};
  StopChecker eos(t, p, std::vector<int64_t>{256});
  CheckerRun r = run(eos, {'h', 'i', 256, 'x'});
  EXPECT_EQ(r.text, "hi");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop, "token:256");
  EXPECT_EQ(r.tokens, 3);  // the stop token counts as a completion token
  StopChecker user(t, p, std::vector<int64_t>{256});
  r = run(user, bytes_of("ab#c"));
  EXPECT_EQ(r.text, "ab");  // the stop token's own text is not emitted
  EXPECT_EQ(r.stop, "token:35");
}

TEST(StopChecker, IgnoreEosKeepsUserStopTokens) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.max_tokens = 100;
  p.ignore_eos = true;
  p.stop_token_ids = {'#'};
  StopChecker checker(t, p, std::vector<int64_t>{256});
  const CheckerRun r = run(checker, {'a', 256, 'b', '#'});
  EXPECT_EQ(r.text, "ab");
  EXPECT_EQ(r.stop, "token:35");
}

TEST(StopChecker, MaxTokensFinishesWithLengthAndFlushesHeldText) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.max_tokens = 5;
  p.stop_strings = {"xyz!"};
  StopChecker checker(t, p, {});
  // Ends on "xy" (held back as a possible stop) and on half of "é": both are flushed.
  const CheckerRun r = run(checker, {'a', 'b', 'x', 'y', 0xC3});
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.text, "abxy\xEF\xBF\xBD");
  EXPECT_EQ(r.tokens, 5);
}

TEST(StopChecker, RejectsBadParameters) {
  const Tokenizer t = byte_tokenizer();
  StopParams p;
  p.stop_token_ids = {257};
  EXPECT_THROW(StopChecker(t, p, {}), Error);
  p = StopParams{};
  p.max_tokens = 0;
  EXPECT_THROW(StopChecker(t, p, {}), Error);
}

TEST(StopChecker, RealTokenizerStopSpanningMultiCharTokens) {
  const Tokenizer t = Tokenizer::load(std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny");
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  const std::vector<uint32_t> encoded = t.encode(text);
  const std::vector<int32_t> ids(encoded.begin(), encoded.end());
  ASSERT_LT(ids.size(), text.size());  // multi-character tokens, so the stop spans some
  StopParams p;
  p.max_tokens = 100;
  p.stop_strings = {"wn fox ju"};
  StopChecker checker(t, p, {});
  const CheckerRun r = run(checker, ids);
  EXPECT_EQ(r.text, "The quick bro");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  // Without a stop string the pieces concatenate to the whole text.
  StopParams plain;
  plain.max_tokens = static_cast<int32_t>(ids.size());
  StopChecker all(t, plain, {});
  const CheckerRun whole = run(all, ids);
  EXPECT_EQ(whole.text, text);
  EXPECT_EQ(whole.finish, FinishReason::kLength);
}

}  // namespace
}  // namespace autoglm
