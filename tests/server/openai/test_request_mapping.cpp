// Unit tests of the OpenAI request mapping: every accepted parameter lands in the engine's
// SamplingParams/StopParams, and every invalid value is a 400 naming its parameter (the JSON
// type named for wrong types), per the API rows of shared/BAD_INPUTS.md.
// Owner: the "openai" thread.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "server/openai/api_error.h"
#include "server/openai/request_mapping.h"

namespace autoglm::server::openai {
namespace {

MappingLimits limits() {
  MappingLimits l;
  l.vocab_size = 1024;
  return l;
}

std::string chat_body(const std::string& extra) {
  return R"({"model":"m","messages":[{"role":"user","content":"hi"}])" +
         (extra.empty() ? std::string() : "," + extra) + "}";
}

std::string completion_body(const std::string& extra) {
  return R"({"model":"m","prompt":"hello")" + (extra.empty() ? std::string() : "," + extra) + "}";
}

// The ApiError a chat body raises (fails the test when none).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_completion_request(body, limits());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError::invalid("", "");
}

ApiError completion_error(const std::string& body) {
  try {
    parse_completion_request(body, limits());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError::invalid("", "");
}

void expect_chat_invalid(const std::string& extra, const std::string& param) {
  const ApiError e = chat_error(chat_body(extra));
  EXPECT_EQ(e.status(), 400) << extra;
  EXPECT_EQ(e.type(), "invalid_request_error");
  EXPECT_EQ(e.param().value_or("<none>"), param) << extra << ": " << e.what();
}

TEST(RequestMapping, DefaultsOfAMinimalChatRequest) {
  const ChatCompletionRequest r = parse_chat_completion_request(chat_body(""), limits());
  EXPECT_EQ(r.settings.model, "m");
  EXPECT_FALSE(r.settings.stream);
  EXPECT_EQ(r.settings.n, 1);
  EXPECT_FALSE(r.settings.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.settings.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.settings.sampling.seed.has_value());
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_TRUE(r.tools.is_null());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "hi");
}

TEST(RequestMapping, EverySamplingParameterIsMapped) {
  const ChatCompletionRequest r = parse_chat_completion_request(
      chat_body(R"("temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,
        "frequency_penalty":0.5,"presence_penalty":-0.5,"repetition_penalty":1.1,
        "seed":-3,"max_tokens":7,"logit_bias":{"5":-100,"7":2.5},"logprobs":true,
        "top_logprobs":3,"stop":["a","bc"],"stop_token_ids":[9],"ignore_eos":true,
        "stream":true,"stream_options":{"include_usage":true},"n":3,"user":"u1",
        "skip_special_tokens":true)"),
      limits());
  const SamplingParams& s = r.settings.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 0.5f);
  EXPECT_FLOAT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_FLOAT_EQ(s.min_p, 0.05f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.presence_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.1f);
  EXPECT_EQ(s.seed, static_cast<uint64_t>(-3));
  ASSERT_EQ(s.logit_bias.size(), 2u);
  EXPECT_EQ(s.logit_bias[0], (std::pair<int32_t, float>{5, -100.0f}));
  EXPECT_EQ(s.logit_bias[1], (std::pair<int32_t, float>{7, 2.5f}));
  EXPECT_TRUE(s.logprobs);
  EXPECT_EQ(s.top_logprobs, 3);
  EXPECT_EQ(r.settings.max_tokens, 7);
  EXPECT_EQ(r.settings.stop.stop_strings, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.settings.stop.stop_token_ids, (std::vector<int32_t>{9}));
  EXPECT_TRUE(r.settings.stop.ignore_eos);
  EXPECT_TRUE(r.settings.stream);
  EXPECT_TRUE(r.settings.include_usage);
  EXPECT_EQ(r.settings.n, 3);
  EXPECT_EQ(r.settings.user, "u1");
}

TEST(RequestMapping, MaxCompletionTokensWinsAndStopMayBeAString) {
  const ChatCompletionRequest r = parse_chat_completion_request(
      chat_body(R"("max_tokens":5,"max_completion_tokens":9,"stop":"x")"), limits());
  EXPECT_EQ(r.settings.max_tokens, 9);
  EXPECT_EQ(r.settings.stop.stop_strings, std::vector<std::string>{"x"});
}

TEST(RequestMapping, TopPZeroMeansTheSingleMostLikelyToken) {
  const ChatCompletionRequest r =
      parse_chat_completion_request(chat_body(R"("top_p":0)"), limits());
  EXPECT_EQ(r.settings.sampling.top_k, 1);
  EXPECT_FLOAT_EQ(r.settings.sampling.top_p, 1.0f);
}

TEST(RequestMapping, NullMeansAbsentAndUnknownFieldsAreIgnored) {
  const ChatCompletionRequest r = parse_chat_completion_request(
      chat_body(R"("temperature":null,"seed":null,"extra_thing":{"a":[1,2]},"tool_choice":"auto")"),
      limits());
  EXPECT_FLOAT_EQ(r.settings.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.settings.sampling.seed.has_value());
}

TEST(RequestMapping, IntegralFloatsAreIntegers) {
  const ChatCompletionRequest r =
      parse_chat_completion_request(chat_body(R"("max_tokens":12.0,"n":2.0)"), limits());
  EXPECT_EQ(r.settings.max_tokens, 12);
  EXPECT_EQ(r.settings.n, 2);
}

TEST(RequestMapping, OutOfRangeNumbersNameTheirParameter) {
  expect_chat_invalid(R"("temperature":2.5)", "temperature");
  expect_chat_invalid(R"("temperature":-0.1)", "temperature");
  expect_chat_invalid(R"("top_p":1.5)", "top_p");
  expect_chat_invalid(R"("top_k":-2)", "top_k");
  expect_chat_invalid(R"("top_k":4294967296)", "top_k");
  expect_chat_invalid(R"("min_p":1.01)", "min_p");
  expect_chat_invalid(R"("frequency_penalty":2.01)", "frequency_penalty");
  expect_chat_invalid(R"("presence_penalty":-3)", "presence_penalty");
  expect_chat_invalid(R"("repetition_penalty":0)", "repetition_penalty");
  expect_chat_invalid(R"("repetition_penalty":-1)", "repetition_penalty");
  expect_chat_invalid(R"("max_tokens":0)", "max_tokens");
  expect_chat_invalid(R"("max_tokens":-5)", "max_tokens");
  expect_chat_invalid(R"("max_tokens":2147483648)", "max_tokens");
  expect_chat_invalid(R"("max_tokens":18446744073709551616)", "max_tokens");
  expect_chat_invalid(R"("max_tokens":1.5)", "max_tokens");
  expect_chat_invalid(R"("max_completion_tokens":0)", "max_completion_tokens");
  expect_chat_invalid(R"("n":0)", "n");
  expect_chat_invalid(R"("n":17)", "n");
  expect_chat_invalid(R"("n":1000000000)", "n");
  expect_chat_invalid(R"("seed":18446744073709551615)", "seed");
  expect_chat_invalid(R"("top_logprobs":21,"logprobs":true)", "top_logprobs");
}

TEST(RequestMapping, WrongJsonTypesAreNamed) {
  const ApiError e = chat_error(chat_body(R"("temperature":"hot")"));
  EXPECT_EQ(e.param(), "temperature");
  EXPECT_NE(std::string(e.what()).find("must be a number, got string"), std::string::npos)
      << e.what();
  const ApiError n = chat_error(chat_body(R"("n":[1])"));
  EXPECT_NE(std::string(n.what()).find("must be an integer, got array"), std::string::npos);
  expect_chat_invalid(R"("stream":"yes")", "stream");
  expect_chat_invalid(R"("stream_options":5,"stream":true)", "stream_options");
  expect_chat_invalid(R"("stream_options":{"include_usage":1},"stream":true)",
                      "stream_options.include_usage");
  expect_chat_invalid(R"("logprobs":1)", "logprobs");
  expect_chat_invalid(R"("ignore_eos":"no")", "ignore_eos");
  expect_chat_invalid(R"("user":7)", "user");
  expect_chat_invalid(R"("stop":5)", "stop");
  expect_chat_invalid(R"("stop":["a",3])", "stop[1]");
  expect_chat_invalid(R"("logit_bias":[1])", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"5":"x"})", "logit_bias[5]");
  expect_chat_invalid(R"("tools":{"a":1})", "tools");
  expect_chat_invalid(R"("tools":[1])", "tools[0]");
  expect_chat_invalid(R"("chat_template_kwargs":[1])", "chat_template_kwargs");
}

TEST(RequestMapping, ModelIsRequiredAndAString) {
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}]})").param(), "model");
  EXPECT_EQ(chat_error(R"({"model":3,"messages":[{"role":"user","content":"x"}]})").param(),
            "model");
}

TEST(RequestMapping, StreamOptionsNeedStream) {
  expect_chat_invalid(R"("stream_options":{"include_usage":true})", "stream_options");
}

TEST(RequestMapping, StopCapsAndEmptyStops) {
  expect_chat_invalid(R"("stop":["a","b","c","d","e"])", "stop");
  expect_chat_invalid(R"("stop":"")", "stop");
  expect_chat_invalid(R"("stop":")" + std::string(1025, 'x') + "\"", "stop");
  expect_chat_invalid(R"("stop_token_ids":[1024])", "stop_token_ids[0]");
  expect_chat_invalid(R"("stop_token_ids":[-1])", "stop_token_ids[0]");
}

TEST(RequestMapping, LogitBiasKeysValuesAndCount) {
  expect_chat_invalid(R"("logit_bias":{"1024":1})", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"-1":1})", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"abc":1})", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"99999999999999999999":1})", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"1":1,"01":2})", "logit_bias");
  expect_chat_invalid(R"("logit_bias":{"1":101})", "logit_bias[1]");
  std::string many = R"("logit_bias":{)";
  for (int i = 0; i < 1025; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\":1";
  many += "}";
  const ApiError e = chat_error(chat_body(many));
  EXPECT_EQ(e.param(), "logit_bias");
  EXPECT_NE(std::string(e.what()).find("at most 1024 entries"), std::string::npos) << e.what();
}

TEST(RequestMapping, TopLogprobsNeedsLogprobs) {
  expect_chat_invalid(R"("top_logprobs":2)", "top_logprobs");
}

TEST(RequestMapping, SkipSpecialTokensFalseIsRefused) {
  expect_chat_invalid(R"("skip_special_tokens":false)", "skip_special_tokens");
}

TEST(RequestMapping, MessagesAreCheckedAndTextPartsJoined) {
  const ChatCompletionRequest r = parse_chat_completion_request(
      R"({"model":"m","messages":[{"role":"system","content":"s"},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
          {"role":"assistant","content":null,"tool_calls":[]}]})",
      limits());
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_TRUE(r.messages[2]["content"].is_null());
  EXPECT_TRUE(r.messages[2].contains("tool_calls"));
}

TEST(RequestMapping, BadMessagesNameTheirPath) {
  const auto expect_messages = [](const std::string& messages, const std::string& param) {
    const ApiError e = chat_error(R"({"model":"m","messages":)" + messages + "}");
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param().value_or("<none>"), param) << messages << ": " << e.what();
  };
  expect_messages("[]", "messages");
  expect_messages("{}", "messages");
  expect_messages("[1]", "messages[0]");
  expect_messages(R"([{"content":"x"}])", "messages[0].role");
  expect_messages(R"([{"role":"user"}])", "messages[0].content");
  expect_messages(R"([{"role":"user","content":5}])", "messages[0].content");
  expect_messages(R"([{"role":"user","content":[{"type":"text"}]}])",
                  "messages[0].content[0].text");
  expect_messages(R"([{"role":"user","content":[{"type":"video_game"}]}])",
                  "messages[0].content[0].type");
  expect_messages(R"([{"role":"user","content":[{"text":"x"}]}])", "messages[0].content[0].type");
}

TEST(RequestMapping, ImagePartsSayTheModelIsTextOnly) {
  for (const char* type : {"image_url", "input_audio", "file"}) {
    const ApiError e = chat_error(
        std::string(
            R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":")") +
        type + R"(","image_url":{"url":"file:///etc/passwd"}}]}]})");
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), "messages[0].content[1]");
    EXPECT_NE(std::string(e.what()).find("accepts text only"), std::string::npos) << e.what();
  }
}

TEST(RequestMapping, TemplateKwargsCannotReplaceTheTemplatesInputs) {
  expect_chat_invalid(R"("chat_template_kwargs":{"messages":[]})", "chat_template_kwargs");
  const ChatCompletionRequest r = parse_chat_completion_request(
      chat_body(R"("chat_template_kwargs":{"enable_thinking":false})"), limits());
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
}

TEST(RequestMapping, NumbersBeyondDoubleAre400) {
  // The parser itself refuses them (no parameter is named: the body is not valid input).
  for (const std::string extra : {R"("temperature":1e309)", R"("logit_bias":{"1":-1e400})"}) {
    const ApiError e = chat_error(chat_body(extra));
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("overflow"), std::string::npos) << e.what();
  }
}

TEST(RequestMapping, MalformedBodiesAre400WithoutParam) {
  for (const std::string& body :
       std::vector<std::string>{"", "{", "[1]", "{\"model\":\"m\"} x", "{\"a\":1,\"a\":2}",
                                "\"str\"", std::string(100000, '[') + std::string(100000, ']'),
                                "{\"model\":\"\xff\"}", R"({"model":"\ud800"})"}) {
    try {
      parse_chat_completion_request(body, limits());
      ADD_FAILURE() << "accepted: " << body.substr(0, 40);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_FALSE(e.param().has_value()) << e.what();
    }
  }
}

TEST(RequestMapping, HugePromptsAre413) {
  MappingLimits small = limits();
  small.max_prompt_bytes = 10;
  try {
    parse_completion_request(R"({"model":"m","prompt":"0123456789ab"})", small);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 413);
    EXPECT_EQ(e.code(), "prompt_too_large");
  }
  try {
    parse_chat_completion_request(
        R"({"model":"m","messages":[{"role":"user","content":"0123456789ab"}]})", small);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 413);
    EXPECT_EQ(e.param(), "messages");
  }
}

TEST(CompletionMapping, PromptShapes) {
  EXPECT_EQ(parse_completion_request(completion_body(""), limits()).prompts[0].text, "hello");
  const CompletionRequest list =
      parse_completion_request(R"({"model":"m","prompt":["a","b"],"n":2})", limits());
  ASSERT_EQ(list.prompts.size(), 2u);
  EXPECT_EQ(list.prompts[1].text, "b");
  const CompletionRequest ids =
      parse_completion_request(R"({"model":"m","prompt":[1,2,3]})", limits());
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_TRUE(ids.prompts[0].is_token_ids);
  EXPECT_EQ(ids.prompts[0].token_ids, (std::vector<int32_t>{1, 2, 3}));
  const CompletionRequest nested =
      parse_completion_request(R"({"model":"m","prompt":[[4],[5,6]]})", limits());
  ASSERT_EQ(nested.prompts.size(), 2u);
  EXPECT_EQ(nested.prompts[1].token_ids, (std::vector<int32_t>{5, 6}));
}

TEST(CompletionMapping, BadPromptsNameTheirPath) {
  const auto expect_prompt = [](const std::string& prompt, const std::string& param) {
    const ApiError e = completion_error(R"({"model":"m","prompt":)" + prompt + "}");
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param().value_or("<none>"), param) << prompt << ": " << e.what();
  };
  expect_prompt("\"\"", "prompt");
  expect_prompt("[]", "prompt");
  expect_prompt("5", "prompt");
  expect_prompt("[1,\"a\"]", "prompt[1]");
  expect_prompt("[1024]", "prompt[0]");
  expect_prompt("[-1]", "prompt[0]");
  expect_prompt("[[]]", "prompt[0]");
  expect_prompt("[\"a\",\"\"]", "prompt[1]");
  expect_prompt("[\"a\",{}]", "prompt[1]");
  expect_prompt("null", "prompt");
}

TEST(CompletionMapping, LogprobsEchoAndChoiceCap) {
  const ApiError echo = completion_error(completion_body(R"("logprobs":2,"echo":true)"));
  EXPECT_EQ(echo.param(), "echo");
  const CompletionRequest lp =
      parse_completion_request(completion_body(R"("logprobs":2)"), limits());
  EXPECT_TRUE(lp.settings.sampling.logprobs);
  EXPECT_EQ(lp.settings.sampling.top_logprobs, 2);
  EXPECT_EQ(completion_error(completion_body(R"("logprobs":21)")).param(), "logprobs");
  EXPECT_EQ(completion_error(completion_body(R"("logprobs":true)")).param(), "logprobs");
  EXPECT_TRUE(parse_completion_request(completion_body(R"("echo":true)"), limits()).echo);
  EXPECT_EQ(completion_error(completion_body(R"("suffix":"x")")).param(), "suffix");
  std::string prompts = "[";
  for (int i = 0; i < 5; ++i) prompts += (i ? ",\"p\"" : "\"p\"");
  prompts += "]";
  const ApiError cap = completion_error(R"({"model":"m","n":16,"prompt":)" + prompts + "}");
  EXPECT_EQ(cap.param(), "n");
}

}  // namespace
}  // namespace autoglm::server::openai
