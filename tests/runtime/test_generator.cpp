// The single-sequence generation loop on the glm4-tiny fixture: greedy output equals
// transformers' reference ids, reusing a cached prefix gives the same tokens as a cold start,
// seeded sampling is reproducible, and prompts that do not fit the KV budget or the context are
// clear errors.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/json_util.h"
#include "model/model_dir.h"
#include "runtime/generator.h"

namespace autoglm {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

struct Fixture {
  std::unique_ptr<LoadedModel> model = load_model_directory(kModelDir);
  Tokenizer tokenizer = Tokenizer::load(kModelDir);
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

Json reference_prompt(const std::string& name) {
  std::ifstream in(kModelDir + "/reference.json");
  std::stringstream text;
  text << in.rdbuf();
  const Json doc = parse_json_limited(text.str(), "reference.json");
  for (const Json& p : doc["prompts"]) {
    if (p["name"] == name) return p;
  }
  throw std::runtime_error("no reference prompt " + name);
}

// A backend, pool and generator over `blocks` blocks of 4 tokens.
struct Session {
  explicit Session(int32_t blocks, int64_t max_context = 0)
      : backend(*fixture().model, KvPoolShape{blocks, 4}),
        pool(KvPoolShape{blocks, 4}),
        generator(backend, pool, fixture().tokenizer, fixture().model->config.eos_token_ids,
                  GeneratorOptions{max_context, /*prefill_chunk=*/5}) {}
  CpuBackend backend;
  KvBlockPool pool;
  SequenceGenerator generator;
};

std::vector<int32_t> ids_of(const GenerationResult& r) {
  std::vector<int32_t> ids;
  for (const GeneratedToken& t : r.tokens) ids.push_back(t.id);
  return ids;
}

StopParams max_tokens(int32_t n) {
  StopParams stop;
  stop.max_tokens = n;
  stop.ignore_eos = true;
  return stop;
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SequenceGenerator, GreedyMatchesTransformersAndStreamsTheText) {
  const Json ref = reference_prompt("english");
  const std::vector<int32_t> prompt = ref["ids"].get<std::vector<int32_t>>();
  const std::vector<int32_t> expected = ref["greedy_ids"].get<std::vector<int32_t>>();
  Session s(64);
  std::string streamed;
  const GenerationResult r =
      s.generator.generate(prompt, greedy(), max_tokens(static_cast<int32_t>(expected.size())),
                           [&](std::string_view piece) { streamed += piece; });
  EXPECT_EQ(ids_of(r), expected);
  EXPECT_EQ(r.finish_reason, FinishReason::kLength);
  EXPECT_EQ(r.prompt_tokens, static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(streamed, r.text);
  const std::vector<uint32_t> unsigned_ids(expected.begin(), expected.end());
  EXPECT_EQ(r.text, fixture().tokenizer.decode(unsigned_ids, /*skip_special_tokens=*/true));
}

TEST(SequenceGenerator, ReusedPrefixGivesTheSameTokensAsAColdStart) {
  const std::vector<int32_t> prompt =
      reference_prompt("english")["ids"].get<std::vector<int32_t>>();
  Session warm(64);
  const GenerationResult first = warm.generator.generate(prompt, greedy(), max_tokens(6), {});
  // The next "turn": the first exchange plus a few more tokens, as a chat would send.
  std::vector<int32_t> second_prompt = prompt;
  for (const GeneratedToken& t : first.tokens) second_prompt.push_back(t.id);
  second_prompt.insert(second_prompt.end(), prompt.begin(), prompt.begin() + 3);
  const GenerationResult reused =
      warm.generator.generate(second_prompt, greedy(), max_tokens(8), {});
  // Every token fed in the first call is reusable: the prompt and all but the last sample.
  EXPECT_EQ(reused.cached_prompt_tokens, static_cast<int32_t>(prompt.size() + 5));
  Session cold(64);
  const GenerationResult fresh =
      cold.generator.generate(second_prompt, greedy(), max_tokens(8), {});
  EXPECT_EQ(fresh.cached_prompt_tokens, 0);
  EXPECT_EQ(ids_of(reused), ids_of(fresh));
  // The same prompt again recomputes only its last token.
  const GenerationResult again =
      warm.generator.generate(second_prompt, greedy(), max_tokens(8), {});
  EXPECT_EQ(again.cached_prompt_tokens, static_cast<int32_t>(second_prompt.size() - 1));
  EXPECT_EQ(ids_of(again), ids_of(fresh));
}

TEST(SequenceGenerator, SeededSamplingIsReproducibleWithLogprobs) {
  const std::vector<int32_t> prompt =
      reference_prompt("english")["ids"].get<std::vector<int32_t>>();
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_p = 0.9f;
  p.seed = 99;
  p.logprobs = true;
  p.top_logprobs = 3;
  Session a(64), b(64);
  const GenerationResult ra = a.generator.generate(prompt, p, max_tokens(12), {});
  const GenerationResult rb = b.generator.generate(prompt, p, max_tokens(12), {});
  EXPECT_EQ(ids_of(ra), ids_of(rb));
  ASSERT_EQ(ra.tokens.size(), 12u);
  for (size_t i = 0; i < ra.tokens.size(); ++i) {
    ASSERT_TRUE(ra.tokens[i].logprobs.has_value());
    EXPECT_EQ(ra.tokens[i].logprobs->top.size(), 3u);
    EXPECT_FLOAT_EQ(ra.tokens[i].logprobs->chosen.logprob, rb.tokens[i].logprobs->chosen.logprob);
    EXPECT_LE(ra.tokens[i].logprobs->chosen.logprob, 0.0f);
  }
  p.seed = 100;
  Session c(64);
  EXPECT_NE(ids_of(c.generator.generate(prompt, p, max_tokens(12), {})), ids_of(ra));
}

TEST(SequenceGenerator, StopsAtEosUnlessIgnored) {
  // Ban everything but one EOS id through logit_bias on the first step: the model must stop.
  const std::vector<int32_t> prompt =
      reference_prompt("english")["ids"].get<std::vector<int32_t>>();
  const int32_t eos = static_cast<int32_t>(fixture().model->config.eos_token_ids.front());
  SamplingParams p = greedy();
  p.logit_bias = {{eos, 100.0f}};
  StopParams stop;
  stop.max_tokens = 5;
  Session s(64);
  const GenerationResult r = s.generator.generate(prompt, p, stop, {});
  EXPECT_EQ(r.finish_reason, FinishReason::kStop);
  EXPECT_EQ(ids_of(r), std::vector<int32_t>{eos});
  EXPECT_EQ(r.text, "");
  stop.ignore_eos = true;
  const GenerationResult ignored = s.generator.generate(prompt, p, stop, {});
  EXPECT_EQ(ignored.finish_reason, FinishReason::kLength);
  EXPECT_EQ(ignored.tokens.size(), 5u);
}

TEST(SequenceGenerator, PromptThatDoesNotFitIsAClearError) {
  const std::vector<int32_t> prompt(10, 5);
  Session small(4);  // 16 tokens of KV
  try {
    small.generator.generate(prompt, greedy(), max_tokens(7), {});
    FAIL() << "17 tokens fit in 16";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(
        std::string(e.what()).find("prompt (10 tokens) + max_tokens (7) needs 5 KV blocks "
                                   "of 4 tokens, but the KV cache holds 4 blocks (16 tokens)"),
        std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(small.generator.generate(prompt, greedy(), max_tokens(6), {}));
  Session short_context(64, /*max_context=*/12);
  EXPECT_THROW(short_context.generator.generate(prompt, greedy(), max_tokens(3), {}), Error);
  EXPECT_THROW(short_context.generator.generate({}, greedy(), max_tokens(3), {}), Error);
}

}  // namespace
}  // namespace autoglm
