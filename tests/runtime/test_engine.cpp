// The Engine end to end on the CPU backend with the glm4-tiny fixture: many concurrent greedy
// requests of mixed lengths give exactly what each gives alone (the single-sequence generator)
// with prefix caching on and off and with a pool small enough to force preemption; a shared
// prefix shows cache hits with identical outputs; rejections, cancellation and devices.
// Thread ownership: the test thread and the client threads it starts.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "autoglm/engine.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/json_util.h"
#include "model/model_dir.h"
#include "runtime/generator.h"

namespace autoglm {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

struct RefPrompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> greedy;  // transformers' 32 greedy ids
};

std::vector<RefPrompt> reference_prompts() {
  std::ifstream in(kModelDir + "/reference.json");
  std::stringstream text;
  text << in.rdbuf();
  const Json doc = parse_json_limited(text.str(), "reference.json");
  std::vector<RefPrompt> out;
  for (const Json& p : doc["prompts"]) {
    out.push_back(
        {p["ids"].get<std::vector<int32_t>>(), p["greedy_ids"].get<std::vector<int32_t>>()});
  }
  return out;
}

struct Job {
  std::vector<int32_t> prompt;
  int32_t max_tokens = 0;
};

GenerationRequest greedy_request(const Job& job) {
  GenerationRequest r;
  r.prompt_ids = job.prompt;
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = job.max_tokens;
  r.stop.ignore_eos = true;
  return r;
}

// Each job alone, through the single-sequence generator (no scheduler, no sharing).
std::vector<std::vector<int32_t>> solo_outputs(const std::vector<Job>& jobs) {
  const std::unique_ptr<LoadedModel> model = load_model_directory(kModelDir);
  const Tokenizer tokenizer = Tokenizer::load(kModelDir);
  std::vector<std::vector<int32_t>> outs;
  for (const Job& job : jobs) {
    CpuBackend backend(*model, KvPoolShape{32, 16});
    KvBlockPool pool(KvPoolShape{32, 16});
    SequenceGenerator gen(backend, pool, tokenizer, model->config.eos_token_ids, {});
    const GenerationRequest r = greedy_request(job);
    const GenerationResult result = gen.generate(job.prompt, r.sampling, r.stop, nullptr);
    std::vector<int32_t> ids;
    for (const GeneratedToken& t : result.tokens) ids.push_back(t.id);
    outs.push_back(std::move(ids));
  }
  return outs;
}

// 64 jobs: every reference prompt, cut to mixed lengths, with mixed max_tokens.
std::vector<Job> mixed_jobs() {
  const std::vector<RefPrompt> refs = reference_prompts();
  std::vector<Job> jobs;
  for (int i = 0; i < 64; ++i) {
    const std::vector<int32_t>& ids = refs[static_cast<size_t>(i) % refs.size()].ids;
    const size_t len = 1 + (static_cast<size_t>(i) * 7) % ids.size();
    jobs.push_back(
        {{ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(len)}, 1 + (i * 5) % 24});
  }
  return jobs;
}

// Submits every job from 8 client threads at once and collects the token ids streamed.
std::vector<std::vector<int32_t>> run_concurrently(Engine& engine, const std::vector<Job>& jobs) {
  std::vector<std::vector<int32_t>> outs(jobs.size());
  std::vector<std::thread> clients;
  for (size_t c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::vector<std::pair<size_t, RequestStream>> mine;
      for (size_t j = c; j < jobs.size(); j += 8) {
        mine.emplace_back(j, engine.submit(greedy_request(jobs[j])));
      }
      for (auto& [j, stream] : mine) {
        while (std::optional<StreamDelta> d = stream.next()) {
          outs[j].insert(outs[j].end(), d->token_ids.begin(), d->token_ids.end());
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  return outs;
}

EngineOptions options(bool prefix_caching, int32_t num_blocks) {
  EngineOptions o;
  o.model_path = kModelDir;
  o.num_kv_blocks = num_blocks;
  o.kv_block_size = 4;
  o.max_num_seqs = 64;
  o.max_batched_tokens = 96;
  o.enable_prefix_caching = prefix_caching;
  o.check_invariants = true;
  return o;
}

// The stats are published after each engine step; wait until they show an idle engine.
std::shared_ptr<const EngineMetricsSnapshot> idle_metrics(const Engine& engine) {
  while (true) {
    std::shared_ptr<const EngineMetricsSnapshot> s = engine.metrics();
    if (s->requests_running == 0 && s->requests_waiting == 0) return s;
    std::this_thread::yield();
  }
}

TEST(Engine, ReferencePromptsGiveTransformersGreedyIds) {
  Engine engine(options(true, 256));
  for (const RefPrompt& p : reference_prompts()) {
    const GenerationOutput out = engine.generate(greedy_request({p.ids, 32}));
    EXPECT_EQ(out.token_ids, p.greedy);
    EXPECT_EQ(out.finish, FinishCause::kLength);
    EXPECT_EQ(out.usage.completion_tokens, 32);
    EXPECT_EQ(out.usage.prompt_tokens, static_cast<int32_t>(p.ids.size()));
  }
}

TEST(Engine, HostGapLeavesOutTheWaitForTheNextRequest) {
  // The host gap is the device's idle time between steps that the engine's own work causes.
  // It once ran from a request's last step to the next request's first, however long the
  // engine had slept in between: a pause between two requests must not show up in it.
  Engine engine(options(true, 256));
  const std::vector<int32_t> prompt = reference_prompts()[0].ids;
  engine.generate(greedy_request({prompt, 8}));
  const uint64_t gaps_before = idle_metrics(engine)->host_gap_seconds.count();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  engine.generate(greedy_request({prompt, 8}));
  const EngineMetricsSnapshot& s = *idle_metrics(engine);
  EXPECT_GT(s.host_gap_seconds.count(), gaps_before);
  EXPECT_LT(s.host_gap_seconds.sum(), 0.2) << "the 400 ms pause was counted as host gap";
}

// Overlapped scheduling feeds each step's samples back to the next step inside the backend;
// every request must get exactly what it gets when each step is collected before the next is
// scheduled: greedy and seeded sampling, penalties (steps that wait for their samples), logit
// bias, logprobs, stop tokens and stop strings, 24 requests from 6 client threads at once.
TEST(Engine, OverlappedSchedulingChangesNoOutput) {
  const std::vector<RefPrompt> refs = reference_prompts();
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 24; ++i) {
    const RefPrompt& ref = refs[static_cast<size_t>(i) % refs.size()];
    GenerationRequest r = greedy_request({ref.ids, 4 + (i * 3) % 17});
    switch (i % 6) {
      case 1:
        r.sampling.temperature = 0.9f;
        r.sampling.top_p = 0.9f;
        r.sampling.seed = 100 + static_cast<uint64_t>(i);
        break;
      case 2:
        r.sampling.temperature = 0.7f;
        r.sampling.presence_penalty = 0.5f;
        r.sampling.frequency_penalty = 0.3f;
        r.sampling.seed = static_cast<uint64_t>(i);
        break;
      case 3:
        r.sampling.logprobs = true;
        r.sampling.top_logprobs = 3;
        r.sampling.logit_bias = {{ref.greedy[1], -5.0f}};
        break;
      case 4:
        r.stop.stop_token_ids = {ref.greedy[2]};  // ends at its third token
        break;
      case 5:
        r.sampling.repetition_penalty = 1.3f;
        break;
      default:
        break;
    }
    requests.push_back(std::move(r));
  }
  const auto run = [&](bool overlap) {
    EngineOptions o = options(true, 96);
    o.overlap_scheduling = overlap;
    Engine engine(o);
    std::vector<GenerationOutput> outs(requests.size());
    std::vector<std::thread> clients;
    for (size_t c = 0; c < 6; ++c) {
      clients.emplace_back([&, c] {
        for (size_t j = c; j < requests.size(); j += 6) outs[j] = engine.generate(requests[j]);
      });
    }
    for (std::thread& t : clients) t.join();
    EXPECT_EQ(idle_metrics(engine)->kv_blocks_used, 0);
    return outs;
  };
  const std::vector<GenerationOutput> collected = run(false);
  const std::vector<GenerationOutput> overlapped = run(true);
  for (size_t j = 0; j < requests.size(); ++j) {
    EXPECT_EQ(overlapped[j].token_ids, collected[j].token_ids) << "request " << j;
    EXPECT_EQ(overlapped[j].finish, collected[j].finish) << "request " << j;
    EXPECT_EQ(overlapped[j].usage.completion_tokens, collected[j].usage.completion_tokens);
    ASSERT_EQ(overlapped[j].logprobs.size(), collected[j].logprobs.size()) << "request " << j;
    // The steps' batches differ with the timing, and a row's last bits with its batch.
    for (size_t t = 0; t < overlapped[j].logprobs.size(); ++t) {
      EXPECT_EQ(overlapped[j].logprobs[t].chosen.id, collected[j].logprobs[t].chosen.id);
      EXPECT_NEAR(overlapped[j].logprobs[t].chosen.logprob, collected[j].logprobs[t].chosen.logprob,
                  1e-4);
    }
  }
  EXPECT_EQ(collected[4].finish, FinishCause::kStop);
  EXPECT_EQ(collected[4].token_ids.size(), 3u);
}

class ConcurrentEquivalence : public ::testing::TestWithParam<std::tuple<bool, int32_t>> {};

TEST_P(ConcurrentEquivalence, SixtyFourRequestsMatchTheirSoloOutputs) {
  const auto [prefix, blocks] = GetParam();
  const std::vector<Job> jobs = mixed_jobs();
  const std::vector<std::vector<int32_t>> expected = solo_outputs(jobs);
  Engine engine(options(prefix, blocks));
  const std::vector<std::vector<int32_t>> got = run_concurrently(engine, jobs);
  for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(got[j], expected[j]) << "job " << j;
  const EngineMetricsSnapshot& s = *idle_metrics(engine);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.requests_finished, jobs.size());
  uint64_t generated = 0;
  for (const Job& job : jobs) generated += static_cast<uint64_t>(job.max_tokens);
  EXPECT_EQ(s.generation_tokens, generated);
  EXPECT_EQ(s.time_to_first_token_seconds.count(), jobs.size());
  EXPECT_EQ(s.inter_token_latency_seconds.count(), generated - jobs.size());
  if (blocks < 64) {
    EXPECT_GT(s.preemptions, 0u) << "the small pool was meant to force preemption";
  }
  if (!prefix) {
    EXPECT_EQ(s.prefix_cache_hits, 0u);
  }
}

// 256 blocks of 4 hold every sequence at once; 24 blocks (96 tokens) force preemption.
INSTANTIATE_TEST_SUITE_P(PoolsAndPrefixCaching, ConcurrentEquivalence,
                         ::testing::Values(std::make_tuple(true, 256), std::make_tuple(false, 256),
                                           std::make_tuple(true, 24), std::make_tuple(false, 24)));

TEST(Engine, SharedPrefixHitsTheCacheWithIdenticalOutputs) {
  const std::vector<RefPrompt> refs = reference_prompts();
  const std::vector<int32_t>& base = refs[5].ids;  // the 37-token chat prompt
  std::vector<Job> jobs;
  for (int i = 0; i < 12; ++i) {
    Job job{{base.begin(), base.begin() + 24}, 8};
    job.prompt.push_back(refs[1].ids[static_cast<size_t>(i)]);  // a distinct last token
    jobs.push_back(job);
  }
  const std::vector<std::vector<int32_t>> expected = solo_outputs(jobs);
  Engine engine(options(true, 256));
  EXPECT_EQ(engine.generate(greedy_request(jobs[0])).token_ids, expected[0]);  // warms the cache
  const std::vector<std::vector<int32_t>> got = run_concurrently(engine, jobs);
  for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(got[j], expected[j]) << "job " << j;
  const EngineMetricsSnapshot& s = *idle_metrics(engine);
  EXPECT_GE(s.prefix_cache_hits, 12u * 24u);  // every request found the 24 shared tokens
  EXPECT_GT(s.prefix_cache_queries, s.prefix_cache_hits);
}

TEST(Engine, RejectsWhatCannotFitWithTheCounts) {
  EngineOptions o = options(true, 64);
  o.max_context_length = 40;
  o.max_queued_tokens = 30;
  Engine engine(o);
  const std::vector<int32_t> prompt(35, 5);
  try {
    engine.submit(greedy_request({prompt, 10}));
    FAIL() << "expected a rejection";
  } catch (const RequestRejected& e) {
    EXPECT_EQ(e.reason(), RequestRejected::Reason::kTooLong);
    EXPECT_NE(std::string(e.what()).find("prompt (35 tokens) + max_tokens (10)"), std::string::npos)
        << e.what();
  }
  try {
    engine.submit(greedy_request({std::vector<int32_t>(31, 5), 2}));
    FAIL() << "expected a rejection";
  } catch (const RequestRejected& e) {
    EXPECT_EQ(e.reason(), RequestRejected::Reason::kQueueFull);
    EXPECT_GE(e.retry_after_s(), 1.0);
  }
  EXPECT_THROW(engine.submit(greedy_request({{100000}, 2})), Error);
  // The engine still serves after rejections.
  EXPECT_EQ(engine.generate(greedy_request({{5, 6, 7}, 3})).token_ids.size(), 3u);
}

TEST(Engine, CudaDeviceIsAClearErrorInACpuBuild) {
  EngineOptions o = options(true, 64);
  o.device = "cuda:0";
  try {
    Engine engine(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
  o.device = "tpu";
  EXPECT_THROW(Engine{o}, Error);
}

TEST(Engine, Fp8KvCacheOnTheCpuIsAClearError) {
  EngineOptions o = options(true, 64);
  o.device = "cpu";
  o.kv_cache_dtype = "fp8";
  try {
    Engine engine(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("kv_cache_dtype"), std::string::npos) << e.what();
  }
  o.kv_cache_dtype = "int4";
  EXPECT_THROW(Engine{o}, Error);
}

TEST(Engine, Fp8WeightsOnTheCpuIsAClearError) {
  EngineOptions o = options(true, 64);
  o.device = "cpu";
  o.quantization = "fp8";
  try {
    Engine engine(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("quantization fp8"), std::string::npos) << e.what();
  }
  o.quantization = "int8";
  try {
    Engine engine(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("'int8'"), std::string::npos) << e.what();
  }
}

TEST(Engine, CancelEndsTheStreamAndFreesItsBlocks) {
  Engine engine(options(true, 256));
  RequestStream stream = engine.submit(greedy_request({{5, 6, 7, 8, 9}, 900}));
  std::optional<StreamDelta> first = stream.next();
  ASSERT_TRUE(first && !first->finish);
  engine.cancel(stream.id());
  std::optional<FinishCause> finish;
  int32_t streamed = static_cast<int32_t>(first->token_ids.size());
  while (std::optional<StreamDelta> d = stream.next()) {
    streamed += static_cast<int32_t>(d->token_ids.size());
    if (d->finish) {
      finish = d->finish;
      EXPECT_EQ(d->usage.completion_tokens, streamed);
    }
  }
  EXPECT_EQ(finish, FinishCause::kCancelled);
  EXPECT_LT(streamed, 900);
  EXPECT_EQ(idle_metrics(engine)->kv_blocks_used, 0);
  engine.cancel(stream.id());  // a second cancel is a no-op
  EXPECT_EQ(engine.generate(greedy_request({{5, 6}, 2})).finish, FinishCause::kLength);
}

TEST(Engine, QueueTimeoutEndsARequestThatNeverStarts) {
  EngineOptions o = options(true, 256);
  o.max_num_seqs = 1;
  Engine engine(o);
  RequestStream hog = engine.submit(greedy_request({{5, 6, 7}, 600}));
  ASSERT_TRUE(hog.next());  // running: the next request waits behind max_num_seqs = 1
  GenerationRequest late = greedy_request({{8, 9}, 4});
  late.queue_timeout = std::chrono::milliseconds(1);
  const GenerationOutput out = engine.generate(late);
  EXPECT_EQ(out.finish, FinishCause::kTimeout);
  EXPECT_TRUE(out.token_ids.empty());
  engine.cancel(hog.id());
}

TEST(Engine, CallbackSubmitDeliversTheSameStreamWithLogprobs) {
  Engine engine(options(true, 256));
  GenerationRequest request = greedy_request({{5, 6, 7, 8}, 12});
  request.sampling.logprobs = true;
  request.sampling.top_logprobs = 3;
  const GenerationOutput blocking = engine.generate(request);
  ASSERT_EQ(blocking.logprobs.size(), blocking.token_ids.size());

  std::mutex mutex;
  std::condition_variable done;
  std::vector<StreamDelta> deltas;
  const uint64_t id = engine.submit(request, [&](StreamDelta d) {
    std::lock_guard<std::mutex> lock(mutex);
    deltas.push_back(std::move(d));
    done.notify_all();
  });
  EXPECT_GT(id, 0u);
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return !deltas.empty() && deltas.back().finish; });
  std::vector<int32_t> ids;
  size_t logprob_rows = 0;
  for (const StreamDelta& d : deltas) {
    ids.insert(ids.end(), d.token_ids.begin(), d.token_ids.end());
    ASSERT_EQ(d.logprobs.size(), d.token_ids.size());
    for (const Logprobs& lp : d.logprobs) {
      EXPECT_EQ(lp.top.size(), 3u);
      EXPECT_EQ(lp.chosen.id, lp.top.front().id);  // greedy picks the most likely token
      EXPECT_LE(lp.chosen.logprob, 0.0f);
    }
    logprob_rows += d.logprobs.size();
  }
  EXPECT_EQ(ids, blocking.token_ids);
  EXPECT_EQ(logprob_rows, ids.size());
  EXPECT_EQ(deltas.back().finish, FinishCause::kLength);
  EXPECT_THROW(engine.submit(request, DeltaCallback{}), Error);
}

}  // namespace
}  // namespace autoglm
