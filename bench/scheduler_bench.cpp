// Scheduler overhead per engine step at a large batch: the time of Scheduler::schedule() +
// update() (and, separately, of sampling every logits row) against the step time of the real
// CPU backend on the same batch. The scheduler and KV cache manager from src/runtime are driven
// directly, as the engine thread drives them; a NoopBackend (fixed logits, no compute) makes
// the many measured steps cheap, then the CpuBackend runs a few steps of the same decode batch
// for the reference. Prefill is run on the NoopBackend too, so the CPU backend's KV holds zeros
// instead of real keys/values: its step does the same arithmetic, which is all that is timed.
// Not a test; results go in docs/PERFORMANCE.md.
// Usage: scheduler_bench --model DIR [--sequences 256] [--prompt-tokens 64]
//                        [--noop-steps 200] [--cpu-steps 3] [--json]
// Thread ownership: single-threaded driver (the CPU backend's pool runs inside forward());
// owned by helper thread "enginebench".
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "bench_util.h"
#include "core/error.h"
#include "core/json_util.h"
#include "model/model_dir.h"
#include "runtime/kv_block_pool.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"

namespace autoglm::bench {
namespace {

// A backend that computes nothing: every logits row is zeros with one peak, so greedy sampling
// has a definite answer. It exists to take the model out of the step time (the point of this
// benchmark); it stands in for no real component in any test.
class NoopBackend final : public Backend {
 public:
  NoopBackend(KvPoolShape pool, int32_t vocab) : pool_(pool), vocab_(vocab) {}
  void forward(const ForwardBatch& batch, std::span<float> logits) override {
    std::fill(logits.begin(), logits.end(), 0.0f);
    for (size_t r = 0; r < batch.logits_rows.size(); ++r) {
      logits[r * static_cast<size_t>(vocab_) + static_cast<size_t>(vocab_ / 2)] = 1.0f;
    }
  }
  KvPoolShape kv_pool() const override { return pool_; }
  int32_t vocab_size() const override { return vocab_; }

 private:
  KvPoolShape pool_;
  int32_t vocab_;
};

struct StepTimes {
  double schedule_s = 0, forward_s = 0, sample_s = 0, update_s = 0;
  int32_t decode_tokens = 0, prefill_tokens = 0;
};

// One engine step as EngineCore::run_step does it, minus streaming and metrics.
StepTimes run_step(Scheduler& scheduler, Backend& backend,
                   std::unordered_map<SequenceId, Sampler>& samplers, std::vector<float>& logits) {
  StepTimes t;
  const Clock::time_point t0 = Clock::now();
  const StepPlan plan = scheduler.schedule(t0);
  const Clock::time_point t1 = Clock::now();
  const size_t vocab = static_cast<size_t>(backend.vocab_size());
  logits.resize(plan.logits_rows.size() * vocab);
  if (!plan.empty()) backend.forward(plan.batch(), logits);
  const Clock::time_point t2 = Clock::now();
  StepOutput output;
  output.rows.reserve(plan.logits_owner.size());
  for (size_t r = 0; r < plan.logits_owner.size(); ++r) {
    const std::span<float> row(logits.data() + r * vocab, vocab);
    output.rows.push_back({samplers.at(plan.logits_owner[r]).sample(row).id, SequenceEnd::kNone});
  }
  const Clock::time_point t3 = Clock::now();
  scheduler.update(plan, output);
  const Clock::time_point t4 = Clock::now();
  t.schedule_s = seconds_between(t0, t1);
  t.forward_s = seconds_between(t1, t2);
  t.sample_s = seconds_between(t2, t3);
  t.update_s = seconds_between(t3, t4);
  t.decode_tokens = plan.num_decode_tokens;
  t.prefill_tokens = plan.num_prefill_tokens;
  return t;
}

struct Options {
  std::string model;
  int32_t sequences = 256;
  int32_t prompt_tokens = 64;
  int32_t noop_steps = 200;
  int32_t cpu_steps = 3;
  bool json = false;
};

struct Series {
  std::vector<double> schedule, forward, sample, update, overhead;  // overhead: sched + update
  void add(const StepTimes& t) {
    schedule.push_back(t.schedule_s);
    forward.push_back(t.forward_s);
    sample.push_back(t.sample_s);
    update.push_back(t.update_s);
    overhead.push_back(t.schedule_s + t.update_s);
  }
};

Json summary_us(const std::vector<double>& samples) {
  const Summary s = summarize(samples);
  return Json{{"mean_us", s.mean * 1e6},
              {"p50_us", s.p50 * 1e6},
              {"p99_us", s.p99 * 1e6},
              {"max_us", s.max * 1e6},
              {"count", s.count}};
}

void print_row(const char* name, const std::vector<double>& samples) {
  const Summary s = summarize(samples);
  std::printf("%-34s %12.1f %12.1f %12.1f %12.1f\n", name, s.mean * 1e6, s.p50 * 1e6, s.p99 * 1e6,
              s.max * 1e6);
}

int run(const Options& o) {
  const std::unique_ptr<LoadedModel> model = load_model_directory(o.model);
  const auto vocab = static_cast<int32_t>(model->config.vocab_size);
  constexpr int32_t kBlockSize = 16;
  const int32_t max_len = o.prompt_tokens + o.noop_steps + o.cpu_steps + 8;
  const int32_t blocks = o.sequences * ((max_len + kBlockSize - 1) / kBlockSize) + 64;
  const KvPoolShape shape{blocks, kBlockSize};
  KvCacheManager kv(KvCacheConfig{blocks, kBlockSize, /*enable_prefix_caching=*/true, o.model});
  Scheduler scheduler(SchedulerConfig{o.sequences, std::max(2048, o.sequences)}, kv);
  NoopBackend noop(shape, vocab);
  CpuBackend cpu(*model, shape);

  std::mt19937 rng(3);
  std::unordered_map<SequenceId, Sampler> samplers;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  for (SequenceId id = 1; id <= o.sequences; ++id) {
    SequenceRequest request;
    request.id = id;
    request.prompt = random_tokens(rng, static_cast<size_t>(o.prompt_tokens), vocab);
    request.max_tokens = max_len;  // never reached: this driver never ends a sequence
    samplers.emplace(id, Sampler(greedy, vocab));
    scheduler.add(std::move(request));
  }
  std::vector<float> logits;
  int32_t prefill_steps = 0;  // until every sequence decodes in one batch
  while (true) {
    const StepTimes t = run_step(scheduler, noop, samplers, logits);
    ++prefill_steps;
    if (t.prefill_tokens == 0 && t.decode_tokens == o.sequences) break;
    if (prefill_steps > 10'000) fail(ErrorCode::kInternal, "the batch never became all-decode");
  }
  Series noop_series, cpu_series;
  for (int32_t i = 0; i < o.noop_steps; ++i)
    noop_series.add(run_step(scheduler, noop, samplers, logits));
  for (int32_t i = 0; i < o.cpu_steps; ++i)
    cpu_series.add(run_step(scheduler, cpu, samplers, logits));

  const double overhead = summarize(noop_series.overhead).mean;
  const double sampling = summarize(noop_series.sample).mean;
  const Summary cpu_forward = summarize(cpu_series.forward);
  const double cpu_step = cpu_forward.mean + overhead + sampling;
  if (o.json) {
    std::printf("%s\n", Json{{"benchmark", "scheduler_overhead"},
                             {"sequences", o.sequences},
                             {"prompt_tokens", o.prompt_tokens},
                             {"cpu_threads", cpu.threads()},
                             {"cpu_isa", std::string(cpu.isa())},
                             {"noop",
                              {{"schedule", summary_us(noop_series.schedule)},
                               {"update", summary_us(noop_series.update)},
                               {"schedule_plus_update", summary_us(noop_series.overhead)},
                               {"sample_all_rows", summary_us(noop_series.sample)},
                               {"forward", summary_us(noop_series.forward)}}},
                             {"cpu",
                              {{"forward", summary_us(cpu_series.forward)},
                               {"schedule_plus_update", summary_us(cpu_series.overhead)},
                               {"sample_all_rows", summary_us(cpu_series.sample)}}},
                             {"overhead_share_of_cpu_step", overhead / cpu_step},
                             {"sampling_share_of_cpu_step", sampling / cpu_step}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf(
      "%d sequences decoding, %d-token prompts, %d no-op steps, %d CPU steps (%d threads, "
      "%s); microseconds per step\n",
      o.sequences, o.prompt_tokens, o.noop_steps, o.cpu_steps, cpu.threads(),
      std::string(cpu.isa()).c_str());
  std::printf("%-34s %12s %12s %12s %12s\n", "", "mean", "p50", "p99", "max");
  print_row("no-op: schedule()", noop_series.schedule);
  print_row("no-op: update()", noop_series.update);
  print_row("no-op: schedule() + update()", noop_series.overhead);
  print_row("no-op: sample all rows (greedy)", noop_series.sample);
  print_row("no-op: forward (fill logits)", noop_series.forward);
  print_row("CPU: forward", cpu_series.forward);
  print_row("CPU: schedule() + update()", cpu_series.overhead);
  std::printf("schedule()+update() = %.3f%% of the CPU step; sampling = %.3f%%\n",
              100.0 * overhead / cpu_step, 100.0 * sampling / cpu_step);
  return 0;
}

}  // namespace
}  // namespace autoglm::bench

int main(int argc, char** argv) {
  autoglm::bench::Options o;
  CLI::App app{"Scheduler overhead per step: no-op backend against the CPU backend"};
  app.add_option("--model", o.model, "model directory (the CPU reference and the vocabulary)")
      ->required();
  app.add_option("--sequences", o.sequences, "sequences decoding together");
  app.add_option("--prompt-tokens", o.prompt_tokens, "random prompt tokens per sequence");
  app.add_option("--noop-steps", o.noop_steps, "decode steps timed on the no-op backend");
  app.add_option("--cpu-steps", o.cpu_steps, "decode steps timed on the CPU backend");
  app.add_flag("--json", o.json, "print one JSON object instead of a table");
  CLI11_PARSE(app, argc, argv);
  try {
    return autoglm::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
