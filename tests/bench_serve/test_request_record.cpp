// Tests for reading OpenAI streaming chunks into per-request measurements (TTFT, ITL, TPOT,
// usage, success and failure), for completions and chat completions.
// Thread ownership: test main thread.
#include <gtest/gtest.h>

#include "bench_serve/request_record.h"

namespace autoglm::bench {
namespace {

TEST(StreamRecorder, CompletionsStreamWithUsage) {
  RequestRecord r;
  StreamRecorder rec(r);
  EXPECT_TRUE(rec.on_data(R"({"choices":[{"text":""}]})", 0.05));  // empty: not a token
  EXPECT_TRUE(rec.on_data(R"({"choices":[{"text":"Hel"}]})", 0.10));
  EXPECT_TRUE(rec.on_data(R"({"choices":[{"text":"lo"}]})", 0.13));
  EXPECT_TRUE(rec.on_data(R"({"choices":[{"text":" world"}]})", 0.20));
  EXPECT_TRUE(
      rec.on_data(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4}})", 0.21));
  EXPECT_FALSE(rec.on_data("[DONE]", 0.22));
  rec.finish(0.25);
  ASSERT_TRUE(r.success) << r.error;
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.10);
  ASSERT_EQ(r.itl_s.size(), 2u);
  EXPECT_NEAR(r.itl_s[0], 0.03, 1e-12);
  EXPECT_NEAR(r.itl_s[1], 0.07, 1e-12);
  EXPECT_EQ(r.content_chunks, 3);
  EXPECT_EQ(r.output_tokens(), 4);  // usage wins over the chunk count
  EXPECT_EQ(r.input_tokens(), 5);
  EXPECT_DOUBLE_EQ(r.e2e_s, 0.25);
  EXPECT_NEAR(*r.tpot_s(), (0.25 - 0.10) / 3, 1e-12);
}

TEST(StreamRecorder, ChatRoleChunkIsNotTheFirstToken) {
  RequestRecord r;
  r.planned_input_tokens = 9;
  StreamRecorder rec(r);
  rec.on_data(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})", 0.01);
  rec.on_data(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})", 0.04);
  rec.on_data(R"({"choices":[{"delta":{"content":"ok"}}]})", 0.06);
  rec.on_data(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})", 0.07);
  rec.on_data("[DONE]", 0.08);
  rec.finish(0.08);
  ASSERT_TRUE(r.success) << r.error;
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.04);
  EXPECT_EQ(r.output_tokens(), 2);  // no usage: content chunks
  EXPECT_EQ(r.input_tokens(), 9);   // no usage: the planned length
}

TEST(StreamRecorder, ErrorEventFailsWithItsMessage) {
  RequestRecord r;
  StreamRecorder rec(r);
  rec.on_data(R"({"choices":[{"text":"a"}]})", 0.1);
  EXPECT_FALSE(rec.on_data(R"({"error":{"message":"engine overloaded","type":"x"}})", 0.2));
  rec.finish(0.3);
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.error.find("engine overloaded"), std::string::npos) << r.error;
  EXPECT_FALSE(r.tpot_s().has_value());
}

TEST(StreamRecorder, StreamWithoutDoneFails) {
  RequestRecord r;
  StreamRecorder rec(r);
  rec.on_data(R"({"choices":[{"text":"a"}]})", 0.1);
  rec.finish(0.2);
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.error.find("[DONE]"), std::string::npos) << r.error;
}

TEST(StreamRecorder, NonJsonEventFails) {
  RequestRecord r;
  StreamRecorder rec(r);
  EXPECT_FALSE(rec.on_data("not json", 0.1));
  EXPECT_FALSE(r.success);
  EXPECT_FALSE(r.error.empty());
}

TEST(StreamRecorder, NoTextFails) {
  RequestRecord r;
  StreamRecorder rec(r);
  rec.on_data(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":0}})", 0.1);
  rec.on_data("[DONE]", 0.1);
  rec.finish(0.1);
  EXPECT_FALSE(r.success);
}

TEST(StreamRecorder, FirstFailureIsKept) {
  RequestRecord r;
  StreamRecorder rec(r);
  rec.fail("connect: refused", 0.01);
  rec.fail("something later", 0.02);
  rec.finish(0.03);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "connect: refused");
  EXPECT_DOUBLE_EQ(r.e2e_s, 0.01);
}

}  // namespace
}  // namespace autoglm::bench
