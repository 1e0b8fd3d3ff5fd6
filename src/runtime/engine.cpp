// See engine.h (the engine thread) and include/autoglm/engine.h (the public API over it).
#include "runtime/engine.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "backend/cpu/cpu_backend.h"
#ifdef AUTOGLM_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#include "core/error.h"
#ifdef AUTOGLM_FAULT_INJECTION
#include "backend/fault_injection.h"
#endif
#include "runtime/kv_block_pool.h"
#include "runtime/logits_processing.h"
#include "tokenizer/tokenizer.h"

namespace autoglm {
namespace {

double seconds_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

SequenceEnd sequence_end(FinishReason reason) {
  return reason == FinishReason::kStop ? SequenceEnd::kStop : SequenceEnd::kLength;
}

FinishCause finish_cause(SequenceEnd end) {
  switch (end) {
    case SequenceEnd::kStop:
      return FinishCause::kStop;
    case SequenceEnd::kLength:
      return FinishCause::kLength;
    case SequenceEnd::kCancelled:
      return FinishCause::kCancelled;
    case SequenceEnd::kTimeout:
      return FinishCause::kTimeout;
    case SequenceEnd::kNone:
      break;
  }
  fail(ErrorCode::kInternal, "engine: a sequence ended with no reason");
}

}  // namespace

std::string_view finish_cause_name(FinishCause cause) {
  switch (cause) {
    case FinishCause::kStop:
      return "stop";
    case FinishCause::kLength:
      return "length";
    case FinishCause::kCancelled:
      return "cancelled";
    case FinishCause::kTimeout:
      return "timeout";
    case FinishCause::kError:
      return "error";
  }
  return "unknown";
}

EngineCore::EngineCore(std::unique_ptr<Backend> backend, EngineCoreConfig config,
                       RequestQueue& queue)
    : backend_(std::move(backend)),
      config_(std::move(config)),
      queue_(queue),
      kv_(config_.kv),
      sessions_(config_.sessions, kv_),
      scheduler_(config_.scheduler, kv_, &sessions_) {
  publish_metrics();
}

void EngineCore::run() {
  while (true) {
    // An idle engine sleeps until work arrives or a session is due to expire. That wait is not
    // host overhead: the next step's host gap starts after it.
    const bool idle = scheduler_.idle() && !in_flight_;
    if (idle) last_step_end_.reset();
    RequestQueue::Work work = queue_.take(idle, idle ? sessions_.next_expiry() : std::nullopt);
    accept(work);
    // New work is visible to the watchdog before the step that may wedge on it: otherwise a
    // step stuck right after an idle spell shows nothing pending and liveness never fails.
    if (!work.submissions.empty()) publish_metrics();
    if (work.stopping) {
      drain_in_flight();
      end_all(FinishCause::kCancelled, "");
      publish_metrics();
      return;
    }
    if (scheduler_.idle() && !in_flight_) {
      sessions_.expire(std::chrono::steady_clock::now());  // a step does it otherwise
    } else {
      try {
        run_step();
      } catch (const std::exception& e) {
        // A backend failure ends only its step's requests (run_step). Anything else failing
        // mid-step (the scheduler, sampling) is a bug that leaves the step's state unknown, so
        // every live request ends with the error; the engine keeps serving new ones.
        metrics_.note_step_failure(e.what());
        drain_in_flight();
        end_all(FinishCause::kError, e.what());
      }
    }
    publish_metrics();
  }
}

void EngineCore::accept(RequestQueue::Work& work) {
  for (PendingRequest& p : work.submissions) {
    const SequenceId id = p.sequence.id;
    scheduler_.add(p.sequence);
    LiveRequest live;
    live.pending = std::move(p);
    live.usage.prompt_tokens = static_cast<int32_t>(live.pending.sequence.prompt.size());
    live_.emplace(id, std::move(live));
  }
  for (SequenceId id : work.cancels) {
    if (scheduler_.cancel(id)) end_request(id, FinishCause::kCancelled, {});
  }
}

void EngineCore::run_step() {
  if (in_flight_ && !may_schedule_ahead()) collect_in_flight();
  const auto start = std::chrono::steady_clock::now();
  StepPlan plan = scheduler_.schedule(start);
  for (const SequenceEnded& e : plan.ended) end_request(e.id, finish_cause(e.end), {});
  note_started(plan);
  if (plan.empty()) {
    if (in_flight_) {
      collect_in_flight();
    } else {
      std::this_thread::yield();  // nothing fits this instant (only while blocks are freed)
    }
    return;
  }
  if (const std::optional<std::string> failure = submit(plan)) {
    // The step in flight still delivers its tokens before this one's requests end.
    if (in_flight_) collect_in_flight();
    end_step_requests(plan, *failure);
    check_invariants();
    return;
  }
  // The step just submitted may read the samples of the one in flight: if that one failed,
  // so does this one.
  if (in_flight_ && !collect_in_flight()) {
    discard_step(plan);
    end_step_requests(plan, "the step before it failed");
    check_invariants();
    return;
  }
  for (const SequenceEnded& e : scheduler_.advance(plan)) ended_ahead_.insert(e.id);
  in_flight_ = std::move(plan);
  if (!config_.overlap_scheduling) collect_in_flight();
}

bool EngineCore::may_schedule_ahead() const {
  for (const SequenceId id : in_flight_->logits_owner) {
    const auto it = live_.find(id);
    if (it == live_.end()) continue;
    if (reads_token_history(it->second.pending.sampler->params())) return false;
  }
  return true;
}

bool EngineCore::collect_in_flight() {
  const StepPlan plan = std::move(*in_flight_);
  in_flight_.reset();
  samples_.assign(plan.logits_rows.size(), RowSample{});
  try {
    backend_->collect_sample(samples_);
  } catch (const std::exception& e) {
    last_step_end_.reset();
    for (const SequenceId id : plan.logits_owner) ended_ahead_.erase(id);
    metrics_.note_step_failure(e.what());
    end_step_requests(plan, e.what());
    check_invariants();
    return false;
  }
  const SteadyTime now = std::chrono::steady_clock::now();
  // The device's gap before this step counts only when the engine was busy all along: not
  // the wait for a request after an idle spell (last_step_end_ is reset then).
  const std::optional<double> gap = backend_->last_idle_gap();
  if (gap && last_step_end_) metrics_.observe_device_idle_gap(*gap);
  last_step_end_ = now;
  std::vector<StreamDelta> deltas;
  std::vector<SequenceId> nonfinite;
  const StepOutput output = take_samples(plan, deltas, nonfinite);
  end_nonfinite_requests(nonfinite);  // before resolve(), which then skips them
  scheduler_.resolve(plan, output);   // ends what the rows end: the same causes as below
  for (size_t r = 0; r < deltas.size(); ++r) {
    const SequenceId id = plan.logits_owner[r];
    // advance() ended a sequence at max_tokens; its stop rules see the same count.
    const bool ended_ahead = ended_ahead_.erase(id) > 0;
    if (!live_.contains(id)) continue;  // ended while the step ran
    SequenceEnd end = output.rows[r].end;
    if (end == SequenceEnd::kNone && ended_ahead) end = SequenceEnd::kLength;
    if (end != SequenceEnd::kNone) {
      end_request(id, finish_cause(end), std::move(deltas[r]));
    } else if (!deltas[r].token_ids.empty()) {
      live_.at(id).pending.channel->push(std::move(deltas[r]));
    }
  }
  check_invariants();
  record_step(plan);
  last_collect_ = now;
  return true;
}

void EngineCore::discard_step(const StepPlan& plan) {
  samples_.assign(plan.logits_rows.size(), RowSample{});
  try {
    backend_->collect_sample(samples_);
  } catch (const std::exception&) {
    // The step failed or its samples are unwanted: its requests end with the caller's cause.
  }
  for (const SequenceId id : plan.logits_owner) ended_ahead_.erase(id);
}

void EngineCore::drain_in_flight() {
  if (!in_flight_) return;
  const StepPlan plan = std::move(*in_flight_);
  in_flight_.reset();
  discard_step(plan);
}

// Non-finite logits (a numerical fault: overflow, bad weights, a kernel bug) fail only the
// requests whose rows had them; they count as a failed step for the circuit breaker.
void EngineCore::end_nonfinite_requests(const std::vector<SequenceId>& ids) {
  if (ids.empty()) {
    metrics_.note_step_success();
    return;
  }
  const std::string error = "the model produced non-finite logits (NaN or Inf)";
  metrics_.note_step_failure(error);
  metrics_.add_nonfinite_logits_requests(ids.size());
  for (SequenceId id : ids) {
    scheduler_.cancel(id);  // false when advance() already ended it at max_tokens
    end_request(id, FinishCause::kError, {}, error);
  }
}

// The backend failed this step: the requests in it end with kError and their blocks are freed
// (the K/V the step was writing lives only in their own unshared, uncommitted blocks); every
// other request, and the engine, carry on.
void EngineCore::end_step_requests(const StepPlan& plan, const std::string& what) {
  const std::string error = "the backend failed a step: " + what;
  for (const ScheduledChunk& chunk : plan.chunks) {
    // Also a sequence the scheduler already ended for length (advance()) whose last token was
    // in this step: its request is still live.
    scheduler_.cancel(chunk.id);
    end_request(chunk.id, FinishCause::kError, {}, error);
  }
}

void EngineCore::check_invariants() const {
#ifdef NDEBUG
  constexpr bool kDebugBuild = false;
#else
  constexpr bool kDebugBuild = true;
#endif
  if (kDebugBuild || config_.check_invariants) {
    kv_.check_invariants(scheduler_.live_block_tables());
  }
}

void EngineCore::note_started(const StepPlan& plan) {
  const SteadyTime now = std::chrono::steady_clock::now();
  for (SequenceId id : plan.started) {
    LiveRequest& live = live_.at(id);
    live.queued = false;
    live.scheduled = now;
    queue_.left_queue(live.usage.prompt_tokens);
    live.usage.cached_prompt_tokens = scheduler_.find(id)->cached_prompt_tokens;
    metrics_.add_prompt_tokens(static_cast<uint64_t>(live.usage.prompt_tokens));
    metrics_.observe_queue_time(seconds_between(live.pending.submitted, now));
  }
}

std::optional<std::string> EngineCore::submit(const StepPlan& plan) {
  sample_rows_.clear();
  adjustments_.clear();
  for (const SequenceId id : plan.logits_owner) {
    sample_rows_.push_back(live_.at(id).pending.sampler->prepare(adjustments_));
  }
  const auto call = std::chrono::steady_clock::now();
  if (last_step_end_) metrics_.observe_host_gap(seconds_between(*last_step_end_, call));
  try {
    backend_->submit_sample(plan.batch(), SampleBatch{sample_rows_, adjustments_});
  } catch (const std::exception& e) {
    metrics_.note_step_failure(e.what());
    return std::string(e.what());
  }
  return std::nullopt;
}

StepOutput EngineCore::take_samples(const StepPlan& plan, std::vector<StreamDelta>& deltas,
                                    std::vector<SequenceId>& nonfinite) {
  StepOutput output;
  for (size_t r = 0; r < plan.logits_owner.size(); ++r) {
    const SequenceId id = plan.logits_owner[r];
    StreamDelta delta;
    SampledRow out{samples_[r].token, SequenceEnd::kNone};
    const auto it = live_.find(id);
    if (it == live_.end()) {  // ended while the step ran: nothing to record or stream
      output.rows.push_back(out);
      deltas.push_back(std::move(delta));
      continue;
    }
    LiveRequest& live = it->second;
    // NaN or infinite logits (the backend flags the row): the model output is broken for this
    // request, which ends with an error instead of a meaningless token; the others carry on.
    if ((samples_[r].flags & kRowNonFiniteLogits) != 0) {
      nonfinite.push_back(id);
      out.token = 0;  // never shown: the request ends before update()
      output.rows.push_back(out);
      deltas.push_back(std::move(delta));
      continue;
    }
    const SampledToken token = live.pending.sampler->accept(samples_[r]);
    StopChecker::Step step = live.pending.stopper->push(token.id);
    delta.token_ids.push_back(token.id);
    if (token.logprobs) delta.logprobs.push_back(std::move(*token.logprobs));
    delta.text = std::move(step.text);
    if (step.finish) {
      out.end = sequence_end(*step.finish);
      live.stop = std::move(step.stop);
    }
    live.usage.completion_tokens += 1;
    note_token(live);
    output.rows.push_back(out);
    deltas.push_back(std::move(delta));
  }
  return output;
}

void EngineCore::end_request(SequenceId id, FinishCause cause, StreamDelta last,
                             std::string error) {
  const auto it = live_.find(id);
  if (it == live_.end()) return;
  LiveRequest& live = it->second;
  if (live.queued) queue_.left_queue(live.usage.prompt_tokens);
  last.finish = cause;
  last.stop = std::move(live.stop);
  last.error = std::move(error);
  last.usage = live.usage;
  live.pending.channel->push(std::move(last));
  const SteadyTime now = std::chrono::steady_clock::now();
  metrics_.observe_e2e_latency(seconds_between(live.pending.submitted, now));
  if (live.has_token) {
    metrics_.observe_request_decode_time(seconds_between(live.first_token, live.last_token));
  }
  metrics_.add_finished_requests(1);
  live_.erase(it);
}

void EngineCore::end_all(FinishCause cause, const std::string& error) {
  for (SequenceId id : scheduler_.live_ids()) scheduler_.cancel(id);
  std::vector<SequenceId> ids;
  for (const auto& [id, live] : live_) ids.push_back(id);
  for (SequenceId id : ids) end_request(id, cause, {}, error);
}

void EngineCore::note_token(LiveRequest& live) {
  const SteadyTime now = std::chrono::steady_clock::now();
  if (!live.has_token) {
    metrics_.observe_time_to_first_token(seconds_between(live.pending.submitted, now));
    metrics_.observe_request_prefill_time(seconds_between(live.scheduled, now));
    live.first_token = now;
    live.has_token = true;
  } else {
    metrics_.observe_inter_token_latency(seconds_between(live.last_token, now));
  }
  live.last_token = now;
  metrics_.add_generation_tokens(1);
}

void EngineCore::record_step(const StepPlan& plan) {
  // With a step in flight behind it, a step's time starts when the previous one was collected.
  const SteadyTime began = last_collect_ && *last_collect_ > plan.time ? *last_collect_ : plan.time;
  const double seconds = seconds_between(began, std::chrono::steady_clock::now());
  metrics_.observe_step(seconds, plan.num_prefill_tokens > 0,
                        static_cast<int32_t>(plan.chunks.size()),
                        static_cast<int32_t>(plan.token_ids.size()));
  if (seconds <= 0.0) return;
  const double rate = static_cast<double>(plan.token_ids.size()) / seconds;
  throughput_ = throughput_ == 0.0 ? rate : 0.8 * throughput_ + 0.2 * rate;
  queue_.set_throughput(throughput_);
}

void EngineCore::publish_metrics() {
  // A request whose sequence advance() ended still runs until its last token is collected.
  metrics_.set_queue_lengths(scheduler_.num_running() + static_cast<int32_t>(ended_ahead_.size()),
                             scheduler_.num_waiting());
  metrics_.set_kv_cache(kv_.stats());
  const SessionStats sessions = sessions_.stats();
  metrics_.set_sessions(sessions.active, sessions.pinned_blocks);
  metrics_.add_preemptions(scheduler_.total_preemptions() - preemptions_reported_);
  preemptions_reported_ = scheduler_.total_preemptions();
  metrics_.publish();
}

// ---- The public API ----------------------------------------------------------------------

RequestStream::RequestStream(uint64_t id, std::shared_ptr<detail::TokenChannel> channel)
    : id_(id), channel_(std::move(channel)) {}

std::optional<StreamDelta> RequestStream::next() {
  return channel_->pop();
}

#ifdef AUTOGLM_FAULT_INJECTION
using FaultHandle = FaultInjectingBackend*;
#else
using FaultHandle = void*;  // never set: such builds refuse fault injection
#endif

struct Engine::Impl {
  EngineOptions options;
  std::unique_ptr<LoadedModel> model;
  std::optional<Tokenizer> tokenizer;  // set in the constructor (no default state)
  std::unique_ptr<RequestQueue> queue;
  std::unique_ptr<EngineCore> core;
  std::thread thread;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> alive{false};
  FaultHandle fault = nullptr;  // owned by `core`'s backend; set when injecting a fault
};

namespace {

// The device an EngineOptions::device names: "cpu", or a CUDA ordinal. "auto" takes the GPU
// when one is usable and says why not otherwise.
struct DeviceChoice {
  bool cuda = false;
  int ordinal = 0;
};

DeviceChoice choose_device(const std::string& device) {
  if (device == "cpu") return {};
  if (device == "auto") {
#ifdef AUTOGLM_HAS_CUDA
    std::string why;
    if (cuda_available(&why)) return {true, 0};
    spdlog::info("device auto: no usable GPU ({}); using the CPU backend", why);
#else
    spdlog::info("device auto: this build has no CUDA backend; using the CPU backend");
#endif
    return {};
  }
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
#ifdef AUTOGLM_HAS_CUDA
    int ordinal = 0;
    if (device.size() > 5) {
      const std::string digits = device.substr(5);
      if (digits.empty() || digits.size() > 3 ||
          digits.find_first_not_of("0123456789") != std::string::npos) {
        fail(ErrorCode::kInvalidArgument, "device '" + device + "': expected cuda:N");
      }
      ordinal = std::stoi(digits);
    }
    std::string why;
    if (!cuda_available(&why)) {
      fail(ErrorCode::kUnsupported, "device '" + device + "': no usable GPU: " + why);
    }
    return {true, ordinal};
#else
    fail(ErrorCode::kUnsupported,
         "device '" + device + "': this build has no CUDA backend; use device cpu");
#endif
  }
  fail(ErrorCode::kInvalidArgument, "device '" + device + "': expected auto, cpu or cuda:N");
}

int64_t context_limit(const EngineOptions& options, const ModelConfig& config) {
  const int64_t model_max = config.max_position_embeddings;
  if (options.max_context_length <= 0) return model_max;
  return model_max > 0 ? std::min(options.max_context_length, model_max)
                       : options.max_context_length;
}

// Wraps the backend in the test-only fault injector when `spec` asks for one; builds without
// AUTOGLM_FAULT_INJECTION refuse any spec rather than silently serving without the fault.
std::unique_ptr<Backend> install_fault_injection(std::unique_ptr<Backend> backend,
                                                 const std::string& spec,
                                                 [[maybe_unused]] FaultHandle& installed) {
  if (spec.empty()) return backend;
#ifdef AUTOGLM_FAULT_INJECTION
  auto injector =
      std::make_unique<FaultInjectingBackend>(std::move(backend), parse_fault_spec(spec));
  installed = injector.get();
  spdlog::warn("fault injection armed: {}", spec);
  return injector;
#else
  fail(ErrorCode::kUnsupported,
       "fault injection '" + spec + "': this build has no fault injection (a test-only option)");
#endif
}

}  // namespace

bool kv_cache_is_fp8(const std::string& kv_cache_dtype) {
  if (kv_cache_dtype == "fp8" || kv_cache_dtype == "fp8_e4m3") return true;
  if (kv_cache_dtype == "auto") return false;
  fail(ErrorCode::kInvalidArgument,
       "kv_cache_dtype must be 'auto' or 'fp8' (E4M3), not '" + kv_cache_dtype + "'");
}

bool weights_are_fp8(const std::string& quantization) {
  if (quantization == "fp8") return true;
  if (quantization == "none") return false;
  fail(ErrorCode::kInvalidArgument,
       "quantization must be 'none' or 'fp8' (W8A8 E4M3), not '" + quantization + "'");
}

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  const DeviceChoice device = choose_device(options.device);
  const bool kv_fp8 = kv_cache_is_fp8(options.kv_cache_dtype);
  const bool weights_fp8 = weights_are_fp8(options.quantization);
  im.model = load_model_directory(options.model_path);
  im.tokenizer = Tokenizer::load(options.model_path);
  const ModelConfig& config = im.model->config;
  std::unique_ptr<Backend> backend;
  KvPoolShape shape{options.num_kv_blocks, options.kv_block_size};
  if (device.cuda) {
#ifdef AUTOGLM_HAS_CUDA
    CudaBackendOptions co;
    co.device = device.ordinal;
    if (options.memory_fraction > 0.0) co.memory_fraction = options.memory_fraction;
    co.block_size = options.kv_block_size;
    co.max_num_seqs = options.max_num_seqs;
    co.max_batched_tokens = options.max_batched_tokens;
    co.max_context_len = context_limit(options, config);
    co.num_kv_blocks = options.num_kv_blocks;
    co.cuda_graphs = options.cuda_graphs;
    co.kv_cache_fp8 = kv_fp8;
    co.weights_fp8 = weights_fp8;
    co.progress = [](uint64_t done, uint64_t total) {
      spdlog::info("uploading weights: {} of {} MiB", done >> 20, total >> 20);
    };
    backend = make_cuda_backend(*im.model, co);
    shape = backend->kv_pool();
    options.device = "cuda:" + std::to_string(device.ordinal);
#endif
  } else {
    if (kv_fp8) {
      fail(ErrorCode::kUnsupported,
           "kv_cache_dtype fp8 needs the CUDA backend; the CPU backend keeps the KV cache in "
           "the activation type (use kv_cache_dtype auto)");
    }
    if (weights_fp8) {
      fail(ErrorCode::kUnsupported,
           "quantization fp8 needs the CUDA backend (FP8 tensor cores); the CPU backend computes "
           "in the checkpoint's type (use quantization none)");
    }
    if (options.num_kv_blocks <= 0) {
      shape = kv_pool_for_budget(config, options.kv_cache_bytes, options.kv_block_size);
    }
    backend = std::make_unique<CpuBackend>(*im.model, shape);
    options.device = "cpu";
  }
  // What an operator sizes against: how many tokens of KV all running requests can hold.
  spdlog::info(
      "KV cache on {} ({}): {} blocks of {} tokens = {} tokens held at once (memory fraction "
      "{}, max_num_seqs {}, max_batched_tokens {}, weights {})",
      options.device, kv_fp8 ? "fp8 e4m3" : "activation dtype", shape.num_blocks, shape.block_size,
      static_cast<int64_t>(shape.num_blocks) * shape.block_size,
      device.cuda ? (options.memory_fraction > 0.0 ? options.memory_fraction : 0.90) : 0.0,
      options.max_num_seqs, options.max_batched_tokens,
      weights_fp8 ? "fp8 e4m3 (W8A8)" : "as in the checkpoint");
  backend = install_fault_injection(std::move(backend), options.fault_injection, im.fault);
  AdmissionLimits limits{options.max_queued_requests, options.max_queued_tokens,
                         context_limit(options, config),
                         static_cast<int64_t>(shape.num_blocks) * shape.block_size};
  im.queue = std::make_unique<RequestQueue>(limits);
  EngineCoreConfig core;
  core.kv = KvCacheConfig{shape.num_blocks, shape.block_size, options.enable_prefix_caching,
                          options.model_path};
  core.scheduler = SchedulerConfig{options.max_num_seqs, options.max_batched_tokens};
  core.sessions.ttl = options.session_ttl;
  core.sessions.max_pinned_blocks =
      options.session_max_blocks > 0 ? options.session_max_blocks : shape.num_blocks / 4;
  core.check_invariants = options.check_invariants;
  core.overlap_scheduling = options.overlap_scheduling;
  im.core = std::make_unique<EngineCore>(std::move(backend), core, *im.queue);
  im.options = std::move(options);
  im.alive = true;
  im.thread = std::thread([&im] {
    try {
      im.core->run();
    } catch (...) {
      // run() ends failed steps itself; anything escaping it is a bug. Stop, visibly.
    }
    im.alive = false;
  });
}

Engine::~Engine() {
  impl_->queue->stop();
#ifdef AUTOGLM_FAULT_INJECTION
  if (impl_->fault != nullptr) impl_->fault->release();  // an injected hang must not block this
#endif
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::vector<int32_t> Engine::encode(std::string_view text) const {
  EncodeOptions raw;
  raw.add_special_tokens = true;
  const std::vector<uint32_t> ids = impl_->tokenizer->encode(text, raw);
  return {ids.begin(), ids.end()};
}

RequestStream Engine::submit(GenerationRequest request) {
  auto channel = std::make_shared<detail::TokenChannel>();
  return RequestStream(enqueue(std::move(request), channel), channel);
}

uint64_t Engine::submit(GenerationRequest request, DeltaCallback on_delta) {
  if (!on_delta) fail(ErrorCode::kInvalidArgument, "submit: the delta callback is empty");
  return enqueue(std::move(request), std::make_shared<detail::TokenChannel>(std::move(on_delta)));
}

uint64_t Engine::enqueue(GenerationRequest request, std::shared_ptr<detail::TokenChannel> channel) {
  Impl& im = *impl_;
  PendingRequest p;
  p.submitted = std::chrono::steady_clock::now();
  p.sequence.id = static_cast<SequenceId>(im.next_id.fetch_add(1));
  p.sequence.prompt =
      request.prompt_ids.empty() ? encode(request.prompt) : std::move(request.prompt_ids);
  if (p.sequence.prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  const int64_t vocab = im.model->config.vocab_size;
  for (int32_t id : p.sequence.prompt) {
    if (id < 0 || id >= vocab) {
      fail(ErrorCode::kInvalidArgument, "prompt token id " + std::to_string(id) +
                                            " is outside the vocabulary of " +
                                            std::to_string(vocab));
    }
  }
  p.sequence.max_tokens = request.stop.max_tokens;
  p.sequence.priority = request.priority;
  if (!request.session_id.empty()) {
    p.sequence.session_key = session_key(request.tenant, request.session_id);
  }
  p.sequence.tenant_salt = std::move(request.tenant);
  if (request.timeout) p.sequence.deadline = p.submitted + *request.timeout;
  if (request.queue_timeout) p.sequence.queue_deadline = p.submitted + *request.queue_timeout;
  p.sampler = std::make_unique<Sampler>(request.sampling, vocab);
  p.sampler->add_prompt(p.sequence.prompt);
  p.stopper =
      std::make_unique<StopChecker>(*im.tokenizer, request.stop, im.model->config.eos_token_ids);
  p.channel = std::move(channel);
  const uint64_t id = static_cast<uint64_t>(p.sequence.id);
  const std::optional<SteadyTime> deadline = p.sequence.deadline;
  im.queue->submit(std::move(p), deadline);
  return id;
}

void Engine::cancel(uint64_t request_id) {
  impl_->queue->cancel(static_cast<SequenceId>(request_id));
}

GenerationOutput Engine::generate(GenerationRequest request) {
  RequestStream stream = submit(std::move(request));
  GenerationOutput out;
  while (std::optional<StreamDelta> delta = stream.next()) {
    out.token_ids.insert(out.token_ids.end(), delta->token_ids.begin(), delta->token_ids.end());
    out.text += delta->text;
    for (Logprobs& lp : delta->logprobs) out.logprobs.push_back(std::move(lp));
    if (delta->finish) {
      out.finish = *delta->finish;
      out.stop = delta->stop;
      out.error = delta->error;
      out.usage = delta->usage;
    }
  }
  return out;
}

const Tokenizer& Engine::tokenizer() const {
  return *impl_->tokenizer;
}

const ModelConfig& Engine::model_config() const {
  return impl_->model->config;
}

const EngineOptions& Engine::options() const {
  return impl_->options;
}

std::shared_ptr<const EngineMetricsSnapshot> Engine::metrics() const {
  return impl_->core->metrics();
}

bool Engine::engine_thread_alive() const {
  return impl_->alive.load();
}

}  // namespace autoglm
