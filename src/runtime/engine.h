// The engine thread's state and loop behind the public Engine (include/autoglm/engine.h): it
// owns the backend, the KV cache manager, the scheduler and, per live request, the Sampler and
// StopChecker. Each iteration takes new requests and cancellations from the RequestQueue,
// runs one scheduler step through the backend, samples one token per logits row, streams the
// deltas to the request channels and publishes stats.
// Thread ownership: constructed on the thread that builds the Engine, then used only by the
// engine thread (run()). It shares only the RequestQueue (which locks) and the published
// metrics snapshot.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
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
  void end_step_requests(const StepPlan& plan, const std::string& what);
  // After every step in debug builds (!NDEBUG), and in release when the options ask for it.
  void check_invariants() const;
  void note_started(const StepPlan& plan);
  // Runs the step's forward and token selection in the backend; false when the backend threw
  // (the step's requests have then ended with kError).
  bool forward_sample(const StepPlan& plan);
  // A row the backend flagged as non-finite is not taken: its request goes to `nonfinite` (an
  // empty delta and a placeholder row keep the rows aligned) for end_nonfinite_requests().
  StepOutput take_samples(const StepPlan& plan, std::vector<StreamDelta>& deltas,
                          std::vector<SequenceId>& nonfinite);
  void end_nonfinite_requests(const std::vector<SequenceId>& ids);
  void end_request(SequenceId id, FinishCause cause, StreamDelta last, std::string error = {});
  void end_all(FinishCause cause, const std::string& error);
  void note_token(LiveRequest& live);
  void record_step(const StepPlan& plan, double seconds);
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
  EngineMetrics metrics_;
  uint64_t preemptions_reported_ = 0;
  double throughput_ = 0.0;  // tokens per second, smoothed
  // When the last backend step returned; empty while the engine is idle. The time from it to
  // the next step's call is host work the device waits for (each step ends synchronised).
  std::optional<std::chrono::steady_clock::time_point> last_step_end_;
};

}  // namespace autoglm
