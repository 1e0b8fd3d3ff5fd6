// Unit tests for hostile or unsupported tokenizer.json files: every failure is an
// Error(kTokenizer) (or kNotFound) whose message names the file and the part at fault.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "test_helpers.h"

namespace autoglm {
namespace {

using test::tiny_tokenizer_json;

// Expects loading `text` to fail with kTokenizer and a message containing `fragment`.
void expect_rejected_text(const std::string& text, const std::string& fragment) {
  try {
    Tokenizer::from_json_text(text, "hostile.json");
    ADD_FAILURE() << "accepted; expected an error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTokenizer) << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find("hostile.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

void expect_rejected(const nlohmann::json& j, const std::string& fragment) {
  expect_rejected_text(j.dump(), fragment);
}

TEST(TokenizerErrors, NotUtf8OrNotJson) {
  std::string text = tiny_tokenizer_json({}).dump();
  text.insert(text.find("\"version\"") + 1, "\xFF\xFE");
  expect_rejected_text(text, "malformed JSON");
  expect_rejected_text("{\"model\": ", "malformed JSON");
  expect_rejected_text("[1, 2]", "not a JSON object");
  expect_rejected_text(std::string(100000, '[') + std::string(100000, ']'), "nested deeper");
}

TEST(TokenizerErrors, VocabularyProblems) {
  auto dup = tiny_tokenizer_json({});
  dup["model"]["vocab"]["zzz"] = 5;
  expect_rejected(dup, "id 5 is used by both");
  auto neg = tiny_tokenizer_json({});
  neg["model"]["vocab"]["zzz"] = -1;
  expect_rejected(neg, "\"zzz\" has an id that is not an integer");
  auto huge = tiny_tokenizer_json({});
  huge["model"]["vocab"]["zzz"] = 4000000000u;
  expect_rejected(huge, "\"zzz\"");
  auto missing = tiny_tokenizer_json({});
  missing["model"].erase("vocab");
  expect_rejected(missing, "model.vocab");
}

TEST(TokenizerErrors, MergeProblems) {
  auto j = tiny_tokenizer_json({"a b"});
  j["model"]["merges"].push_back("q zz");
  expect_rejected(j, "model.merges[1]: token \"zz\" is not in the vocabulary");
  auto no_result = tiny_tokenizer_json({});
  no_result["model"]["merges"] = {"x y"};  // "xy" is not in the vocabulary
  expect_rejected(no_result, "\"xy\" is not in the vocabulary");
  auto bad_shape = tiny_tokenizer_json({});
  bad_shape["model"]["merges"] = {"abc"};
  expect_rejected(bad_shape, "exactly one space");
  bad_shape["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a"})});
  expect_rejected(bad_shape, "model.merges[0]");
}

TEST(TokenizerErrors, AddedTokenProblems) {
  auto j = tiny_tokenizer_json({});
  test::add_token(j, 300, "<x>", true);
  test::add_token(j, 300, "<y>", true);
  expect_rejected(j, "added_tokens[1]");
  auto clash = tiny_tokenizer_json({});
  test::add_token(clash, 65, "<not A>", true);  // 65 is "A" in the vocabulary
  expect_rejected(clash, "belongs to another vocabulary token");
  auto empty = tiny_tokenizer_json({});
  test::add_token(empty, 300, "", true);
  expect_rejected(empty, "non-empty string");
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  auto n = tiny_tokenizer_json({});
  n["normalizer"] = {{"type", "Lowercase"}};
  expect_rejected(n, "unsupported normalizer type \"Lowercase\"");
  auto p = tiny_tokenizer_json({});
  p["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_rejected(p, "unsupported pre_tokenizer type \"Metaspace\"");
  auto no_bl = tiny_tokenizer_json({});
  no_bl["pre_tokenizer"] = nullptr;
  expect_rejected(no_bl, "only byte-level BPE");
  auto m = tiny_tokenizer_json({});
  m["model"]["type"] = "WordPiece";
  expect_rejected(m, "unsupported model type \"WordPiece\"");
  auto d = tiny_tokenizer_json({});
  d["decoder"] = {{"type", "WordPiece"}};
  expect_rejected(d, "unsupported decoder type");
  auto pp = tiny_tokenizer_json({});
  pp["post_processor"] = {{"type", "BertProcessing"}};
  expect_rejected(pp, "unsupported post_processor type \"BertProcessing\"");
  auto re = tiny_tokenizer_json({});
  re["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_rejected(re, "cannot compile regex");
  auto fb = tiny_tokenizer_json({});
  fb["model"]["byte_fallback"] = true;
  expect_rejected(fb, "byte_fallback");
}

TEST(TokenizerErrors, MissingFileIsNotFound) {
  try {
    Tokenizer::load("/nonexistent/dir/tokenizer.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerErrors, LoadsFromModelDirectory) {
  const Tokenizer t = Tokenizer::load(std::string(AUTOGLM_FIXTURES_DIR) +
                                      "/tokenizers/../tokenizers/gpt2_style.json");
  EXPECT_GT(t.vocab_size(), 256u);
}

}  // namespace
}  // namespace autoglm
