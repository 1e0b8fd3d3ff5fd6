// Engine benchmarks through the public API (include/autoglm/engine.h), on the CPU backend:
//   throughput  output tok/s, TTFT and inter-token latency (mean, p99) against concurrency:
//               a burst of C requests with distinct random prompts of fixed length, greedy,
//               ignore_eos, fixed output length; the reference is the C = 1 rate of the run.
//   prefix      a shared-prefix workload (one long common "system prompt" plus short distinct
//               suffixes, all submitted at once) with prefix caching on, then off: total time,
//               TTFT, the prefix-cache hit rate from the metrics snapshot, and whether the
//               outputs are identical.
// Tokens are timed as they reach the delta callback (on the engine thread), so the figures
// exclude any client-side reading delay. Not a test; results go in docs/PERFORMANCE.md.
// Usage: engine_bench {throughput|prefix} --model DIR [options] [--json]
// Thread ownership: the main thread submits and waits; callbacks run on the engine thread
// (owned by helper thread "enginebench").
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "autoglm/engine.h"
#include "bench_util.h"
#include "core/error.h"
#include "core/json_util.h"
#include "model/model_config.h"
#include "model/model_dir.h"

namespace autoglm::bench {
namespace {

struct RequestTimeline {
  Clock::time_point submitted;
  std::vector<Clock::time_point> token_times;
  std::vector<int32_t> token_ids;
  FinishCause finish = FinishCause::kLength;
  std::string error;
  int32_t cached_prompt_tokens = 0;
};

struct WaveResult {
  double wall_s = 0.0;
  double cpu_s = 0.0;  // CPU time this process used meanwhile (all threads): shows contention
  std::vector<RequestTimeline> requests;
};

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Submits every prompt at once and waits until all have finished.
WaveResult run_wave(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                    int32_t output_tokens) {
  WaveResult result;
  result.requests.resize(prompts.size());
  std::mutex mutex;
  std::condition_variable all_done;
  size_t remaining = prompts.size();
  const double cpu_start = process_cpu_seconds();
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest request;
    request.prompt_ids = prompts[i];
    request.sampling.temperature = 0.0f;
    request.stop.max_tokens = output_tokens;
    request.stop.ignore_eos = true;
    RequestTimeline& timeline = result.requests[i];
    timeline.submitted = Clock::now();
    engine.submit(std::move(request), [&, i](StreamDelta delta) {
      const Clock::time_point now = Clock::now();
      RequestTimeline& t = result.requests[i];
      for (int32_t id : delta.token_ids) {
        t.token_times.push_back(now);
        t.token_ids.push_back(id);
      }
      if (!delta.finish) return;
      t.finish = *delta.finish;
      t.error = delta.error;
      t.cached_prompt_tokens = delta.usage.cached_prompt_tokens;
      const std::lock_guard<std::mutex> lock(mutex);
      if (--remaining == 0) all_done.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mutex);
  all_done.wait(lock, [&] { return remaining == 0; });
  result.wall_s = seconds_between(start, Clock::now());
  result.cpu_s = process_cpu_seconds() - cpu_start;
  for (const RequestTimeline& t : result.requests) {
    if (t.finish != FinishCause::kLength) {
      fail(ErrorCode::kInternal, "a benchmark request ended with '" +
                                     std::string(finish_cause_name(t.finish)) + "': " + t.error);
    }
  }
  return result;
}

struct WaveStats {
  double output_tokens_per_s = 0.0;
  Summary ttft_s, itl_s;
};

WaveStats wave_stats(const WaveResult& wave) {
  std::vector<double> ttft, itl;
  size_t tokens = 0;
  for (const RequestTimeline& t : wave.requests) {
    tokens += t.token_times.size();
    if (t.token_times.empty()) continue;
    ttft.push_back(seconds_between(t.submitted, t.token_times.front()));
    for (size_t k = 1; k < t.token_times.size(); ++k) {
      itl.push_back(seconds_between(t.token_times[k - 1], t.token_times[k]));
    }
  }
  return {static_cast<double>(tokens) / wave.wall_s, summarize(ttft), summarize(itl)};
}

Json summary_json(const Summary& s) {
  return Json{{"mean_ms", s.mean * 1e3},
              {"p50_ms", s.p50 * 1e3},
              {"p99_ms", s.p99 * 1e3},
              {"max_ms", s.max * 1e3},
              {"count", s.count}};
}

struct Options {
  std::string model;
  std::vector<int> concurrency{1, 4, 16, 64};
  int32_t prompt_tokens = 64;
  int32_t output_tokens = 64;
  int32_t requests = 32;
  int32_t prefix_tokens = 1000;
  int32_t suffix_tokens = 16;
  int32_t max_batched_tokens = 512;
  bool json = false;
};

EngineOptions engine_options(const Options& o, int32_t max_num_seqs, bool prefix_caching) {
  EngineOptions e;
  e.model_path = o.model;
  e.device = "cpu";
  e.kv_cache_bytes = 1ull << 30;
  e.max_num_seqs = max_num_seqs;
  e.max_batched_tokens = o.max_batched_tokens;
  e.enable_prefix_caching = prefix_caching;
  return e;
}

// Pages the mmapped weights in and sizes the backend's scratch before anything is timed.
void warm_up(Engine& engine) {
  std::mt19937 rng(7);
  run_wave(engine, {random_tokens(rng, 16, engine.model_config().vocab_size)}, 4);
}

int run_throughput(const Options& o) {
  const int max_c = *std::max_element(o.concurrency.begin(), o.concurrency.end());
  Engine engine(engine_options(o, max_c, /*prefix_caching=*/true));
  warm_up(engine);
  std::mt19937 rng(1);
  Json rows = Json::array();
  double reference = 0.0;
  if (!o.json) {
    std::printf("%11s %9s %11s %8s %14s %13s %13s %12s %7s\n", "concurrency", "wall s", "out tok/s",
                "speedup", "TTFT mean ms", "ITL mean ms", "ITL p50 ms", "ITL p99 ms", "CPU s");
  }
  for (int c : o.concurrency) {
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < c; ++i) {
      prompts.push_back(random_tokens(rng, static_cast<size_t>(o.prompt_tokens),
                                      engine.model_config().vocab_size));
    }
    const WaveResult wave = run_wave(engine, prompts, o.output_tokens);
    const WaveStats s = wave_stats(wave);
    if (reference == 0.0) reference = s.output_tokens_per_s;
    const double speedup = s.output_tokens_per_s / reference;
    rows.push_back(Json{{"concurrency", c},
                        {"wall_s", wave.wall_s},
                        {"process_cpu_s", wave.cpu_s},
                        {"output_tokens_per_s", s.output_tokens_per_s},
                        {"speedup_over_first", speedup},
                        {"ttft", summary_json(s.ttft_s)},
                        {"itl", summary_json(s.itl_s)}});
    if (!o.json) {
      std::printf("%11d %9.2f %11.1f %7.2fx %14.1f %13.1f %13.1f %12.1f %7.1f\n", c, wave.wall_s,
                  s.output_tokens_per_s, speedup, s.ttft_s.mean * 1e3, s.itl_s.mean * 1e3,
                  s.itl_s.p50 * 1e3, s.itl_s.p99 * 1e3, wave.cpu_s);
    }
  }
  if (o.json) {
    std::printf("%s\n", Json{{"benchmark", "throughput"},
                             {"prompt_tokens", o.prompt_tokens},
                             {"output_tokens", o.output_tokens},
                             {"max_batched_tokens", o.max_batched_tokens},
                             {"rows", rows}}
                            .dump(2)
                            .c_str());
  }
  return 0;
}

struct PrefixRun {
  WaveResult wave;
  WaveStats stats;
  uint64_t queries = 0, hits = 0;                 // the engine's metrics (tokens looked up / found)
  uint64_t cached_tokens = 0, prompt_tokens = 0;  // from each request's usage
};

PrefixRun run_prefix_once(const Options& o, bool caching,
                          const std::vector<std::vector<int32_t>>& prompts) {
  Engine engine(engine_options(o, o.requests, caching));
  warm_up(engine);
  const auto before = engine.metrics();  // the warm-up's lookups are not part of the figure
  PrefixRun run;
  run.wave = run_wave(engine, prompts, o.output_tokens);
  run.stats = wave_stats(run.wave);
  // The snapshot is published just after the step that ended the last request: wait for it.
  std::shared_ptr<const EngineMetricsSnapshot> after = engine.metrics();
  for (int i = 0; i < 1000 && after->requests_finished < before->requests_finished + prompts.size();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    after = engine.metrics();
  }
  run.queries = after->prefix_cache_queries - before->prefix_cache_queries;
  run.hits = after->prefix_cache_hits - before->prefix_cache_hits;
  for (const RequestTimeline& t : run.wave.requests) run.cached_tokens += t.cached_prompt_tokens;
  for (const std::vector<int32_t>& p : prompts) run.prompt_tokens += p.size();
  return run;
}

Json prefix_json(const PrefixRun& r) {
  return Json{{"wall_s", r.wave.wall_s},
              {"process_cpu_s", r.wave.cpu_s},
              {"ttft", summary_json(r.stats.ttft_s)},
              {"prefix_cache_queries", r.queries},
              {"prefix_cache_hits", r.hits},
              {"hit_rate", r.queries ? static_cast<double>(r.hits) / r.queries : 0.0},
              {"usage_cached_prompt_tokens", r.cached_tokens},
              {"prompt_tokens", r.prompt_tokens}};
}

int run_prefix(const Options& o) {
  const int64_t vocab = load_model_directory(o.model)->config.vocab_size;  // mmap only
  std::mt19937 rng(2);
  const std::vector<int32_t> common =
      random_tokens(rng, static_cast<size_t>(o.prefix_tokens), vocab);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < o.requests; ++i) {
    std::vector<int32_t> p = common;
    const std::vector<int32_t> suffix =
        random_tokens(rng, static_cast<size_t>(o.suffix_tokens), vocab);
    p.insert(p.end(), suffix.begin(), suffix.end());
    prompts.push_back(std::move(p));
  }
  const PrefixRun on = run_prefix_once(o, true, prompts);
  const PrefixRun off = run_prefix_once(o, false, prompts);
  bool identical = true;
  for (size_t i = 0; i < prompts.size(); ++i) {
    identical = identical && on.wave.requests[i].token_ids == off.wave.requests[i].token_ids;
  }
  const double speedup = off.wave.wall_s / on.wave.wall_s;
  const double ttft_speedup = off.stats.ttft_s.mean / on.stats.ttft_s.mean;
  if (o.json) {
    std::printf("%s\n", Json{{"benchmark", "prefix"},
                             {"requests", o.requests},
                             {"prefix_tokens", o.prefix_tokens},
                             {"suffix_tokens", o.suffix_tokens},
                             {"output_tokens", o.output_tokens},
                             {"caching_on", prefix_json(on)},
                             {"caching_off", prefix_json(off)},
                             {"total_time_speedup", speedup},
                             {"mean_ttft_speedup", ttft_speedup},
                             {"identical_outputs", identical}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("%8s %9s %7s %14s %13s %13s %17s %9s %15s\n", "caching", "wall s", "CPU s",
              "TTFT mean ms", "TTFT p50 ms", "TTFT max ms", "hits/queries", "hit rate",
              "cached/prompt");
  for (const auto& [name, r] : {std::pair{"on", &on}, std::pair{"off", &off}}) {
    std::printf("%8s %9.2f %7.1f %14.1f %13.1f %13.1f %8llu/%-8llu %8.1f%% %7llu/%-7llu\n", name,
                r->wave.wall_s, r->wave.cpu_s, r->stats.ttft_s.mean * 1e3,
                r->stats.ttft_s.p50 * 1e3, r->stats.ttft_s.max * 1e3,
                static_cast<unsigned long long>(r->hits),
                static_cast<unsigned long long>(r->queries),
                r->queries ? 100.0 * static_cast<double>(r->hits) / r->queries : 0.0,
                static_cast<unsigned long long>(r->cached_tokens),
                static_cast<unsigned long long>(r->prompt_tokens));
  }
  std::printf("total time speedup %.2fx, mean TTFT speedup %.2fx, identical outputs: %s\n", speedup,
              ttft_speedup, identical ? "yes" : "NO");
  return identical ? 0 : 1;
}

}  // namespace
}  // namespace autoglm::bench

int main(int argc, char** argv) {
  using namespace autoglm::bench;
  Options o;
  CLI::App app{"Engine throughput/latency and prefix-cache benchmarks (CPU backend)"};
  app.require_subcommand(1);
  CLI::App* tp = app.add_subcommand("throughput", "output tok/s and ITL against concurrency");
  CLI::App* px = app.add_subcommand("prefix", "shared-prefix workload, prefix caching on/off");
  for (CLI::App* cmd : {tp, px}) {
    cmd->add_option("--model", o.model, "model directory")->required();
    cmd->add_option("--output-tokens", o.output_tokens, "tokens generated per request");
    cmd->add_option("--max-batched-tokens", o.max_batched_tokens, "engine step token budget");
    cmd->add_flag("--json", o.json, "print one JSON object instead of a table");
  }
  tp->add_option("--concurrency", o.concurrency, "request counts, one burst each")->delimiter(',');
  tp->add_option("--prompt-tokens", o.prompt_tokens, "random prompt tokens per request");
  px->add_option("--requests", o.requests, "requests sharing the prefix");
  px->add_option("--prefix-tokens", o.prefix_tokens, "tokens of the common prefix");
  px->add_option("--suffix-tokens", o.suffix_tokens, "distinct tokens after it");
  CLI11_PARSE(app, argc, argv);
  try {
    return tp->parsed() ? run_throughput(o) : run_prefix(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
