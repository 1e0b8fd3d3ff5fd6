// Fault injection into the engine thread: a real Backend subclass wraps the CPU backend and
// throws on chosen steps. Only the requests in a failing step end, with kError and the message;
// the others finish with exactly their normal greedy outputs, every block comes back, and the
// engine keeps serving.
// Thread ownership: the test thread, and the engine thread it starts around EngineCore::run().
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "model/model_dir.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace autoglm {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

// The CPU backend, except that the steps numbered in `failing_steps` (from 1) throw before
// computing anything, recording which sequences they held (one logits row per decode).
class FaultyBackend : public Backend {
 public:
  FaultyBackend(const LoadedModel& model, KvPoolShape shape, std::set<int32_t> failing_steps)
      : inner_(model, shape), failing_steps_(std::move(failing_steps)) {}
  void forward(const ForwardBatch& batch, std::span<float> logits) override {
    if (failing_steps_.contains(++steps_)) {
      failed_batch_sizes_.push_back(batch.n_seqs());
      fail(ErrorCode::kInternal, "injected fault at step " + std::to_string(steps_));
    }
    inner_.forward(batch, logits);
  }
  KvPoolShape kv_pool() const override { return inner_.kv_pool(); }
  int32_t vocab_size() const override { return inner_.vocab_size(); }
  // As a device-timing backend would: every step reports the same idle gap before it.
  std::optional<double> last_idle_gap() const override { return kReportedGap; }
  static constexpr double kReportedGap = 0.0005;

  std::vector<int32_t> failed_batch_sizes_;  // read after the engine thread joined

 private:
  CpuBackend inner_;
  std::set<int32_t> failing_steps_;
  int32_t steps_ = 0;
};

struct Harness {
  explicit Harness(std::set<int32_t> failing_steps)
      : model(load_model_directory(kModelDir)),
        tokenizer(Tokenizer::load(kModelDir)),
        queue(AdmissionLimits{1024, 1 << 20, 4096, 64 * 4}) {
    const KvPoolShape shape{64, 4};
    auto backend = std::make_unique<FaultyBackend>(*model, shape, std::move(failing_steps));
    faulty = backend.get();
    EngineCoreConfig config;
    config.kv = KvCacheConfig{shape.num_blocks, shape.block_size, true, kModelDir};
    config.scheduler = SchedulerConfig{8, 64};
    config.check_invariants = true;
    core = std::make_unique<EngineCore>(std::move(backend), config, queue);
    thread = std::thread([this] { core->run(); });
  }
  ~Harness() {
    queue.stop();
    thread.join();
  }

  // Queues a greedy request the way Engine::submit does, returning its channel.
  std::shared_ptr<detail::TokenChannel> submit(SequenceId id, std::vector<int32_t> prompt,
                                               int32_t max_tokens) {
    PendingRequest p;
    p.submitted = std::chrono::steady_clock::now();
    p.sequence.id = id;
    p.sequence.prompt = std::move(prompt);
    p.sequence.max_tokens = max_tokens;
    SamplingParams sampling;
    sampling.temperature = 0.0f;
    StopParams stop;
    stop.max_tokens = max_tokens;
    stop.ignore_eos = true;
    p.sampler = std::make_unique<Sampler>(sampling, model->config.vocab_size);
    p.stopper = std::make_unique<StopChecker>(tokenizer, stop, model->config.eos_token_ids);
    p.channel = std::make_shared<detail::TokenChannel>();
    auto channel = p.channel;
    queue.submit(std::move(p), std::nullopt);
    return channel;
  }

  std::unique_ptr<LoadedModel> model;
  Tokenizer tokenizer;
  RequestQueue queue;
  FaultyBackend* faulty = nullptr;
  std::unique_ptr<EngineCore> core;
  std::thread thread;
};

struct Result {
  std::vector<int32_t> tokens;
  FinishCause finish = FinishCause::kLength;
  std::string error;
};

Result drain(detail::TokenChannel& channel) {
  Result out;
  while (std::optional<StreamDelta> d = channel.pop()) {
    out.tokens.insert(out.tokens.end(), d->token_ids.begin(), d->token_ids.end());
    if (d->finish) {
      out.finish = *d->finish;
      out.error = d->error;
    }
  }
  return out;
}

std::vector<int32_t> prompt_of(int32_t length, int32_t seed) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < length; ++i) ids.push_back((seed * 31 + i * 13) % 1000 + 3);
  return ids;
}

TEST(EngineFaults, AFailingStepEndsOnlyItsRequestsAndTheEngineServesOn) {
  // Reference outputs from a backend that never fails.
  std::vector<int32_t> expected_a, expected_b;
  {
    Harness clean({});
    auto a = clean.submit(1, prompt_of(9, 1), 6);
    expected_a = drain(*a).tokens;
    auto b = clean.submit(2, prompt_of(11, 2), 6);
    expected_b = drain(*b).tokens;
  }
  ASSERT_EQ(expected_a.size(), 6u);

  // Request 1 runs alone; its third step fails. Request 2, submitted after 1 has ended,
  // never shares a step with the fault and must finish normally on the same engine.
  Harness h({3});
  auto one = h.submit(1, prompt_of(9, 1), 6);
  const Result failed = drain(*one);
  EXPECT_EQ(failed.finish, FinishCause::kError);
  EXPECT_NE(failed.error.find("injected fault at step 3"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.tokens.size(), 2u);  // steps 1 and 2 each produced a token
  EXPECT_EQ(failed.tokens, std::vector<int32_t>(expected_a.begin(), expected_a.begin() + 2));
  auto two = h.submit(2, prompt_of(11, 2), 6);
  const Result ok = drain(*two);
  EXPECT_EQ(ok.finish, FinishCause::kLength);
  EXPECT_EQ(ok.tokens, expected_b);
  std::shared_ptr<const EngineMetricsSnapshot> s = h.core->metrics();
  while (s->requests_running + s->requests_waiting > 0) s = h.core->metrics();
  EXPECT_EQ(s->kv_blocks_used, 0);
}

// The device idle gap the backend reports is observed for every step but the first after an
// idle spell (whose gap is the wait for a request, not the engine's), and after a failure.
TEST(EngineFaults, DeviceIdleGapLeavesOutIdleSpellsAndFailures) {
  Harness h({15});
  for (SequenceId id = 1; id <= 2; ++id) {  // 6 steps each, one after the other
    auto stream = h.submit(id, prompt_of(9, static_cast<int32_t>(id)), 6);
    EXPECT_EQ(drain(*stream).finish, FinishCause::kLength);
  }
  auto failing = h.submit(3, prompt_of(9, 3), 6);  // step 15 overall: its third step fails
  EXPECT_EQ(drain(*failing).finish, FinishCause::kError);
  std::shared_ptr<const EngineMetricsSnapshot> s = h.core->metrics();
  while (s->requests_running + s->requests_waiting > 0) s = h.core->metrics();
  // 5 + 5, then request 3's second step (its first followed an idle spell, its third failed).
  EXPECT_EQ(s->device_idle_gap_seconds.count(), 11u);
  EXPECT_NEAR(s->device_idle_gap_seconds.sum(), 11 * FaultyBackend::kReportedGap, 1e-12);
}

TEST(EngineFaults, RequestsOutsideTheFailingStepAreUntouched) {
  // A long prompt is prefilled in chunks of 64 tokens while nothing else runs; steps that hold
  // only its chunks fail it alone. A request queued behind the budget is not in that step.
  Harness h({1});
  auto big = h.submit(1, prompt_of(64, 3), 4);    // fills step 1's 64-token budget alone
  auto later = h.submit(2, prompt_of(10, 4), 4);  // cannot fit in step 1
  const Result failed = drain(*big);
  const Result ok = drain(*later);
  EXPECT_EQ(failed.finish, FinishCause::kError);
  EXPECT_TRUE(failed.tokens.empty());
  EXPECT_EQ(ok.finish, FinishCause::kLength);
  EXPECT_EQ(ok.tokens.size(), 4u);
}

}  // namespace
}  // namespace autoglm
