// Sessions end to end on the CPU backend with the glm4-tiny fixture: the second turn of a chat
// reuses the first turn's prompt + output KV even after other traffic cycled the whole pool,
// and gives exactly the tokens a run without sessions gives; the metrics count the session
// and its pinned blocks.
// Thread ownership: the test thread only.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "autoglm/engine.h"
#include "core/json_util.h"

namespace autoglm {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

std::vector<std::vector<int32_t>> reference_prompt_ids() {
  std::ifstream in(kModelDir + "/reference.json");
  std::stringstream text;
  text << in.rdbuf();
  const Json doc = parse_json_limited(text.str(), "reference.json");
  std::vector<std::vector<int32_t>> out;
  for (const Json& p : doc["prompts"]) out.push_back(p["ids"].get<std::vector<int32_t>>());
  return out;
}

EngineOptions small_pool_options() {
  EngineOptions o;
  o.model_path = kModelDir;
  o.num_kv_blocks = 48;  // 192 tokens: a few requests fill it
  o.kv_block_size = 4;
  o.max_num_seqs = 8;
  o.max_batched_tokens = 64;
  o.session_max_blocks = 16;
  o.check_invariants = true;
  return o;
}

GenerationRequest greedy(std::vector<int32_t> prompt, int32_t max_tokens, std::string session) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  r.session_id = std::move(session);
  return r;
}

std::shared_ptr<const EngineMetricsSnapshot> idle_metrics(const Engine& engine) {
  while (true) {
    std::shared_ptr<const EngineMetricsSnapshot> s = engine.metrics();
    if (s->requests_running == 0 && s->requests_waiting == 0) return s;
    std::this_thread::yield();
  }
}

struct TwoTurns {
  GenerationOutput first, second;
  int32_t pinned_after_first = 0;
  int32_t sessions_after_first = 0;
};

// Turn 1, then 12 unrelated requests that allocate 12 x 10 blocks from a 48-block pool, then
// turn 2 = turn 1's prompt + output + a new user message.
TwoTurns chat_under_pressure(const std::string& session) {
  const std::vector<std::vector<int32_t>> refs = reference_prompt_ids();
  Engine engine(small_pool_options());
  TwoTurns out;
  const std::vector<int32_t>& first_prompt = refs[5];  // 37 tokens
  out.first = engine.generate(greedy(first_prompt, 8, session));
  const EngineMetricsSnapshot& after_first = *idle_metrics(engine);
  out.pinned_after_first = after_first.session_pinned_blocks;
  out.sessions_after_first = after_first.sessions_active;
  for (int32_t i = 0; i < 12; ++i) {
    std::vector<int32_t> other(refs[static_cast<size_t>(i) % refs.size()]);
    other.resize(32, 7);
    other[0] = 100 + i;  // distinct from the first block on: nothing shared with the chat
    engine.generate(greedy(other, 8, ""));
  }
  std::vector<int32_t> second_prompt = first_prompt;
  second_prompt.insert(second_prompt.end(), out.first.token_ids.begin(), out.first.token_ids.end());
  second_prompt.insert(second_prompt.end(), refs[1].begin(), refs[1].begin() + 5);
  out.second = engine.generate(greedy(second_prompt, 8, session));
  return out;
}

TEST(EngineSessions, SecondTurnReusesTheFirstTurnAfterThePoolWasCycled) {
  const TwoTurns with = chat_under_pressure("chat-1");
  const TwoTurns without = chat_under_pressure("");
  // 37 + 8 tokens, the last without K/V: 44 computed, 11 full blocks of 4.
  EXPECT_EQ(with.pinned_after_first, 11);
  EXPECT_EQ(with.sessions_after_first, 1);
  EXPECT_EQ(without.pinned_after_first, 0);
  EXPECT_EQ(with.second.usage.cached_prompt_tokens, 44);
  EXPECT_EQ(without.second.usage.cached_prompt_tokens, 0) << "the traffic was meant to evict";
  EXPECT_EQ(with.first.token_ids, without.first.token_ids);
  EXPECT_EQ(with.second.token_ids, without.second.token_ids);
  EXPECT_EQ(with.second.usage.prompt_tokens, 37 + 8 + 5);
}

TEST(EngineSessions, ExpiredSessionsReleaseTheirPins) {
  EngineOptions o = small_pool_options();
  o.session_ttl = std::chrono::seconds(0);  // sessions off
  Engine off(o);
  const std::vector<std::vector<int32_t>> refs = reference_prompt_ids();
  off.generate(greedy(refs[5], 8, "chat"));
  EXPECT_EQ(idle_metrics(off)->session_pinned_blocks, 0);
  EXPECT_EQ(idle_metrics(off)->kv_blocks_used, 0);

  o.session_ttl = std::chrono::seconds(1);
  Engine on(o);
  on.generate(greedy(refs[5], 8, "chat"));
  EXPECT_EQ(idle_metrics(on)->session_pinned_blocks, 11);
  EXPECT_EQ(idle_metrics(on)->kv_blocks_used, 11);
  // The idle engine wakes up for the expiry by itself (bounded wait: 1 s TTL, 30 s limit).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (on.metrics()->sessions_active > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const EngineMetricsSnapshot& s = *on.metrics();
  EXPECT_EQ(s.sessions_active, 0);
  EXPECT_EQ(s.session_pinned_blocks, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
}

}  // namespace
}  // namespace autoglm
