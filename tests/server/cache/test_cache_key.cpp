// The response cache key and value: tenants never share a key, every output-affecting field
// changes it and nothing else does, only deterministic requests are cacheable, and answers
// survive serialization while corrupt bytes are refused. Owner: the "cache" thread.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "server/cache/response_cache.h"

namespace autoglm::server::cache {
namespace {

GenerationRequest greedy_request() {
  GenerationRequest request;
  request.prompt_ids = {1, 2, 3, 4};
  request.sampling.temperature = 0.0f;
  request.stop.max_tokens = 8;
  return request;
}

CacheKey key_of(const GenerationRequest& request, std::string_view tenant = "") {
  return make_cache_key("glm4-tiny", "rev1", tenant, request);
}

TEST(CacheKey, IsStableForTheSameRequest) {
  EXPECT_EQ(key_of(greedy_request()), key_of(greedy_request()));
  EXPECT_EQ(key_hex(key_of(greedy_request())).size(), 64u);
}

TEST(CacheKey, TenantsNeverShareAKey) {
  const GenerationRequest request = greedy_request();
  EXPECT_NE(key_of(request, "tenant-a"), key_of(request, "tenant-b"));
  EXPECT_NE(key_of(request, ""), key_of(request, "tenant-a"));
  // Length prefixes: moving bytes between fields cannot collide.
  EXPECT_NE(make_cache_key("m", "rev1a", "b", request), make_cache_key("m", "rev1", "ab", request));
}

TEST(CacheKey, ModelAndRevisionArePartOfTheKey) {
  const GenerationRequest request = greedy_request();
  EXPECT_NE(make_cache_key("glm4-tiny", "rev1", "", request),
            make_cache_key("other", "rev1", "", request));
  EXPECT_NE(make_cache_key("glm4-tiny", "rev1", "", request),
            make_cache_key("glm4-tiny", "rev2", "", request));
}

TEST(CacheKey, EveryOutputAffectingFieldChangesTheKey) {
  const CacheKey base = key_of(greedy_request());
  const std::vector<std::pair<const char*, std::function<void(GenerationRequest&)>>> changes = {
      {"prompt", [](GenerationRequest& r) { r.prompt_ids.push_back(5); }},
      {"temperature", [](GenerationRequest& r) { r.sampling.temperature = 0.5f; }},
      {"top_k", [](GenerationRequest& r) { r.sampling.top_k = 3; }},
      {"top_p", [](GenerationRequest& r) { r.sampling.top_p = 0.9f; }},
      {"min_p", [](GenerationRequest& r) { r.sampling.min_p = 0.1f; }},
      {"repetition", [](GenerationRequest& r) { r.sampling.repetition_penalty = 1.1f; }},
      {"presence", [](GenerationRequest& r) { r.sampling.presence_penalty = 0.5f; }},
      {"frequency", [](GenerationRequest& r) { r.sampling.frequency_penalty = 0.5f; }},
      {"logit_bias",
       [](GenerationRequest& r) {
         r.sampling.logit_bias = {{7, 1.0f}};
       }},
      {"seed", [](GenerationRequest& r) { r.sampling.seed = 42; }},
      {"logprobs", [](GenerationRequest& r) { r.sampling.logprobs = true; }},
      {"top_logprobs", [](GenerationRequest& r) { r.sampling.top_logprobs = 2; }},
      {"max_tokens", [](GenerationRequest& r) { r.stop.max_tokens = 9; }},
      {"ignore_eos", [](GenerationRequest& r) { r.stop.ignore_eos = true; }},
      {"stop_token_ids", [](GenerationRequest& r) { r.stop.stop_token_ids = {2}; }},
      {"stop_strings", [](GenerationRequest& r) { r.stop.stop_strings = {"\n"}; }},
  };
  for (const auto& [name, change] : changes) {
    GenerationRequest changed = greedy_request();
    change(changed);
    EXPECT_NE(key_of(changed), base) << name;
  }
}

TEST(CacheKey, FieldsThatDoNotChangeTheAnswerAreNotInTheCanonicalForm) {
  GenerationRequest other = greedy_request();
  other.priority = 3;
  other.timeout = std::chrono::milliseconds(100);
  other.queue_timeout = std::chrono::milliseconds(10);
  other.tenant = "engine-salt";  // the cache keys the HTTP tenant separately
  other.sampling.temperature = -0.0f;
  EXPECT_EQ(canonical_request(other), canonical_request(greedy_request()));
  EXPECT_EQ(key_of(other), key_of(greedy_request()));
}

TEST(CacheKey, OnlyDeterministicRequestsAreCacheable) {
  GenerationRequest request = greedy_request();
  EXPECT_TRUE(is_cacheable(request));
  request.sampling.temperature = 0.7f;
  EXPECT_FALSE(is_cacheable(request));
  request.sampling.seed = 1234;
  EXPECT_TRUE(is_cacheable(request));
}

TEST(CacheKey, ModelRevisionFollowsTheModelFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "autoglm_cache_revision_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"a": 1})";
  std::ofstream(dir / "model.safetensors") << "weights";
  const std::string first = model_revision(dir.string(), "");
  EXPECT_EQ(model_revision(dir.string(), ""), first);
  EXPECT_NE(model_revision(dir.string(), "v2"), first);
  std::ofstream(dir / "config.json") << R"({"a": 2})";
  const std::string second = model_revision(dir.string(), "");
  EXPECT_NE(second, first);
  std::ofstream(dir / "model.safetensors") << "weights, retrained";
  EXPECT_NE(model_revision(dir.string(), ""), second);
  std::filesystem::remove_all(dir);
}

CachedAnswer sample_answer() {
  CachedAnswer answer;
  answer.text = "hello \xe4\xb8\x96 world";
  answer.token_ids = {10, 20, 30};
  answer.logprobs = {{{10, -0.5f}, {{10, -0.5f}, {11, -1.5f}}}, {{20, -0.25f}, {}}, {{30, 0}, {}}};
  answer.finish = FinishCause::kLength;
  answer.prompt_tokens = 4;
  answer.completion_tokens = 3;
  return answer;
}

TEST(CachedAnswerFormat, RoundTrips) {
  const CachedAnswer answer = sample_answer();
  const std::optional<CachedAnswer> back = deserialize_answer(serialize_answer(answer));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->text, answer.text);
  EXPECT_EQ(back->token_ids, answer.token_ids);
  ASSERT_EQ(back->logprobs.size(), 3u);
  EXPECT_EQ(back->logprobs[0].top.size(), 2u);
  EXPECT_EQ(back->logprobs[0].top[1].id, 11);
  EXPECT_FLOAT_EQ(back->logprobs[1].chosen.logprob, -0.25f);
  EXPECT_EQ(back->finish, FinishCause::kLength);
  EXPECT_EQ(back->prompt_tokens, 4);
  EXPECT_EQ(back->completion_tokens, 3);
}

TEST(CachedAnswerFormat, RefusesTruncatedOrExtendedBytes) {
  const std::string bytes = serialize_answer(sample_answer());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(deserialize_answer(std::string_view(bytes).substr(0, cut))) << cut;
  }
  EXPECT_FALSE(deserialize_answer(bytes + "x"));
  std::string huge_count = bytes;
  huge_count[4 + 1 + 4 + 4] = '\xff';  // the text's length prefix, low byte
  huge_count[4 + 1 + 4 + 4 + 7] = '\x7f';
  EXPECT_FALSE(deserialize_answer(huge_count));
}

}  // namespace
}  // namespace autoglm::server::cache
