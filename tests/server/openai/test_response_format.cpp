// Unit tests of the OpenAI response shapes: completion objects, chunks, usage and both logprob
// shapes, parsed back from their JSON text. Uses the glm4-tiny fixture's tokenizer for token
// strings and bytes. Owner: the "openai" thread.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "server/openai/api_error.h"
#include "server/openai/response_format.h"

namespace autoglm::server::openai {
namespace {

const Tokenizer& tokenizer() {
  static const Tokenizer t =
      Tokenizer::load(std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny");
  return t;
}

Json reparse(const Json& j) {
  return Json::parse(json_text(j));
}

ResponseContext context() {
  return ResponseContext{"chatcmpl-abc", 1700000000, "glm"};
}

TEST(ResponseFormat, ResponseIdsAreUniqueAndPrefixed) {
  const std::string a = new_response_id("chatcmpl-"), b = new_response_id("chatcmpl-");
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 9u + 24u);
  EXPECT_NE(a, b);
}

TEST(ResponseFormat, ChatCompletionObject) {
  ChoiceResult c;
  c.index = 0;
  c.text = "héllo";
  c.finish = FinishCause::kStop;
  const Json j = reparse(chat_completion_json(context(), tokenizer(), {c}, {10, 3, 4}, false));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], "chatcmpl-abc");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "glm");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "héllo");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 13);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
}

TEST(ResponseFormat, ChatLogprobsShape) {
  Logprobs lp;
  lp.chosen = {65, -0.5f};
  lp.top = {{65, -0.5f}, {66, -std::numeric_limits<float>::infinity()}};
  const Json j = reparse(chat_logprobs_json(tokenizer(), {65}, {lp}));
  ASSERT_EQ(j["content"].size(), 1u);
  const Json& entry = j["content"][0];
  EXPECT_EQ(entry["token"], tokenizer().decode(std::vector<uint32_t>{65}));
  EXPECT_DOUBLE_EQ(entry["logprob"].get<double>(), -0.5);
  const std::string_view raw = *tokenizer().decoder_bytes(65);
  ASSERT_EQ(entry["bytes"].size(), raw.size());
  EXPECT_EQ(entry["bytes"][0], static_cast<unsigned char>(raw[0]));
  ASSERT_EQ(entry["top_logprobs"].size(), 2u);
  EXPECT_DOUBLE_EQ(entry["top_logprobs"][1]["logprob"].get<double>(), -9999.0);  // -inf
  EXPECT_TRUE(entry["top_logprobs"][1].contains("bytes"));
}

TEST(ResponseFormat, CompletionLogprobsShapeAndOffsets) {
  Logprobs a, b;
  a.chosen = {65, -1.0f};
  a.top = {{65, -1.0f}};
  b.chosen = {66, -2.0f};
  b.top = {{66, -2.0f}, {65, -3.0f}};
  int64_t offset = 5;
  const Json j = reparse(completion_logprobs_json(tokenizer(), {65, 66}, {a, b}, offset));
  ASSERT_EQ(j["tokens"].size(), 2u);
  ASSERT_EQ(j["token_logprobs"].size(), 2u);
  ASSERT_EQ(j["top_logprobs"].size(), 2u);
  ASSERT_EQ(j["text_offset"].size(), 2u);
  EXPECT_EQ(j["text_offset"][0], 5);
  const std::string first = j["tokens"][0];
  EXPECT_EQ(j["text_offset"][1], 5 + code_points(first));
  EXPECT_EQ(offset, 5 + code_points(first) + code_points(j["tokens"][1].get<std::string>()));
  EXPECT_DOUBLE_EQ(j["token_logprobs"][1].get<double>(), -2.0);
  EXPECT_TRUE(j["top_logprobs"][1].is_object());
  EXPECT_EQ(j["top_logprobs"][1].size(), 2u);
}

TEST(ResponseFormat, TextCompletionWithEcho) {
  ChoiceResult c;
  c.index = 1;
  c.text = " world";
  c.finish = FinishCause::kLength;
  const Json j =
      reparse(text_completion_json(context(), tokenizer(), {c}, {2, 1, 0}, false, {"hello"}));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "hello world");
  EXPECT_EQ(j["choices"][0]["index"], 1);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(ResponseFormat, ChunksAndUsageChunk) {
  const Json role = reparse(
      chat_chunk_json(context(), 0, Json{{"role", "assistant"}}, nullptr, std::nullopt, true));
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(role["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(role.contains("usage") && role["usage"].is_null());
  const Json last =
      reparse(chat_chunk_json(context(), 2, Json::object(), nullptr, FinishCause::kLength, false));
  EXPECT_EQ(last["choices"][0]["index"], 2);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(last.contains("usage"));
  const Json text = reparse(text_chunk_json(context(), 0, "ab", nullptr, std::nullopt, false));
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "ab");
  const Json usage = reparse(usage_chunk_json(context(), "chat.completion.chunk", {5, 6, 0}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 11);
}

TEST(ResponseFormat, SseFramingAndErrorShape) {
  const std::string event = sse_event(Json{{"a", 1}});
  EXPECT_EQ(event, "data: {\"a\":1}\n\n");
  const ApiError e(429, "busy", "rate_limit_error", std::nullopt, "queue_full");
  const Json body = Json::parse(error_response(e).body);
  EXPECT_EQ(body["error"]["message"], "busy");
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(body["error"]["param"].is_null());
  EXPECT_EQ(body["error"]["code"], "queue_full");
  EXPECT_EQ(error_response(e).status, 429);
  const std::string framed = error_event(ApiError::invalid("n", "bad n"));
  EXPECT_EQ(framed.rfind("data: {\"error\":", 0), 0u);
  EXPECT_EQ(framed.substr(framed.size() - 2), "\n\n");
}

TEST(ResponseFormat, InvalidUtf8InTextIsReplacedNotThrown) {
  ChoiceResult c;
  c.text = "a\xff";
  EXPECT_NO_THROW(json_text(chat_completion_json(context(), tokenizer(), {c}, {}, false)));
}

}  // namespace
}  // namespace autoglm::server::openai
