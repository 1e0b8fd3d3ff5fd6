// The engine thread's state and loop behind the public Engine (include/autoglm/engine.h): it
// owns the backend, the KV cache manager, the scheduler and, per live request, the Sampler and
// StopChecker. Each iteration takes new requests and cancellations from the RequestQueue,
// schedules and submits one step to the backend, then collects the step submitted before it
// (overlapped scheduling: the device runs step N while the host prepares step N + 1, whose
// decode tokens are step N's samples, fed back on the device), streams the deltas to the
// request channels and publishes stats. Without overlap each step is collected right after
// its submission.
// Thread ownership: constructed on the thread that builds the Engine, then used only by the
// engine thread (run()). It shares only the RequestQueue (which locks) and the published
// metrics snapshot.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "autoglm/engine.h"
#include "backend/backend.h"
#include "model/model_dir.h"
#include "runtime/kv_cache.h"
#include "runtime/metrics.h"
#include "runtime/request_queue.h"
#include "runtime/scheduler.h"
#include "runtime/session_cache.h"

namespace autoglm {

struct EngineCoreConfig {
  KvCacheConfig kv;
  SchedulerConfig scheduler;
  SessionConfig sessions;
  bool check_invariants = false;  // also in release builds (debug builds always check)
  bool overlap_scheduling = true;
};

class EngineCore {
 public:
  EngineCore(std::unique_ptr<Backend> backend, EngineCoreConfig config, RequestQueue& queue);

  // The engine thread's body: returns after RequestQueue::stop(), once every live request has
  // ended (with kCancelled).
  void run();
  // Any thread: the last published metrics.
  std::shared_ptr<const EngineMetricsSnapshot> metrics() const { return metrics_.latest(); }

 private:
  struct LiveRequest {
    PendingRequest pending;
    Usage usage;
    bool queued = true;  // still counted by admission control
    std::optional<std::string> stop;
    SteadyTime scheduled, first_token, last_token;  // for the latency histograms
    bool has_token = false;
  };

  void accept(RequestQueue::Work& work);
  void run_step();
  // Whether the next step may be scheduled before `in_flight_` is collected: not when a row's
  // sampling reads the token history, which would miss the token still on the device.
  bool may_schedule_ahead() const;
  // Waits for the step in flight and applies it: tokens to the scheduler and the requests.
  // False when the backend failed it (its requests have then ended with kError).
  bool collect_in_flight();
  // Takes a queued step's samples from the backend and drops them (after a failure, or when
  // the engine stops).
  void discard_step(const StepPlan& plan);
  void drain_in_flight();
  void end_step_requests(const StepPlan& plan, const std::string& what);
  // After every step in debug builds (!NDEBUG), and in release when the options ask for it.
  void check_invariants() const;
  void note_started(const StepPlan& plan);
  // Submits the step's forward and token selection to the backend; what failed when the backend
  // threw (the caller ends the step's requests).
  std::optional<std::string> submit(const StepPlan& plan);
  // A row the backend flagged as non-finite is not taken: its request goes to `nonfinite` (an
  // empty delta and a placeholder row keep the rows aligned) for end_nonfinite_requests().
  StepOutput take_samples(const StepPlan& plan, std::vector<StreamDelta>& deltas,
                          std::vector<SequenceId>& nonfinite);
  void end_nonfinite_requests(const std::vector<SequenceId>& ids);
  void end_request(SequenceId id, FinishCause cause, StreamDelta last, std::string error = {});
  void end_all(FinishCause cause, const std::string& error);
  void note_token(LiveRequest& live);
  void record_step(const StepPlan& plan);
  void publish_metrics();

  std::unique_ptr<Backend> backend_;
  EngineCoreConfig config_;
  RequestQueue& queue_;
  KvCacheManager kv_;
  SessionCache sessions_;  // before scheduler_, which points at it
  Scheduler scheduler_;
  std::unordered_map<SequenceId, LiveRequest> live_;
  // The step's sampling rows, adjustments and results (reused: no allocation per step).
  std::vector<RowSamplingParams> sample_rows_;
  std::vector<LogitAdjustment> adjustments_;
  std::vector<RowSample> samples_;
  // The step submitted and advanced in the scheduler but not yet collected.
  std::optional<StepPlan> in_flight_;
  // When the last step was collected (a step's duration runs from the later of this and its
  // scheduling time).
  std::optional<SteadyTime> last_collect_;
  // Requests whose sequence advance() ended at max_tokens; they end when that step is collected.
  std::unordered_set<SequenceId> ended_ahead_;
  EngineMetrics metrics_;
  uint64_t preemptions_reported_ = 0;
  double throughput_ = 0.0;  // tokens per second, smoothed
  // When the last step was collected; empty while the engine is idle. The time from it to the
  // next submission is host work (which the device waits for unless a step is in flight).
  std::optional<std::chrono::steady_clock::time_point> last_step_end_;
};

}  // namespace autoglm
