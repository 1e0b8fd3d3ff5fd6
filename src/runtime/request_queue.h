// Everything the caller threads and the engine thread share, and therefore every lock of the
// engine: the submission queue (new requests and cancellations, with admission control under
// the same lock so a rejection is immediate) and the per-request token channels. The metrics
// snapshot is the one exception: EngineMetrics (metrics.h) swaps it under its own pointer lock.
// AdmissionControl is plain data.
// Thread ownership: RequestQueue and TokenChannel are safe from any thread; an
// AdmissionControl is used only under RequestQueue's lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "autoglm/engine.h"
#include "runtime/sampler.h"
#include "runtime/sequence.h"
#include "runtime/stop_checker.h"

namespace autoglm {

struct AdmissionLimits {
  int32_t max_queued_requests = 1024;
  int64_t max_queued_tokens = 1 << 20;
  int64_t max_context = 0;  // prompt + max_tokens must fit (0: unbounded)
  int64_t pool_tokens = 0;  // ... and fit the whole KV pool
};

// The bounded waiting queue's accounting and deadline-aware admission. A request counts as
// queued from admit() until left_queue() (it started, or ended before starting).
class AdmissionControl {
 public:
  explicit AdmissionControl(AdmissionLimits limits);

  // Throws RequestRejected (kTooLong, kQueueFull, kDeadlineUnreachable) or counts the request.
  void admit(int32_t prompt_tokens, int32_t max_tokens, std::optional<SteadyTime> deadline,
             SteadyTime now);
  void left_queue(int32_t prompt_tokens);
  // Prompt tokens per second the engine has been computing (0: not measured yet).
  void set_throughput(double tokens_per_s) { throughput_ = tokens_per_s; }

  int32_t queued_requests() const { return queued_requests_; }
  int64_t queued_tokens() const { return queued_tokens_; }

 private:
  double seconds_to_clear(int64_t tokens) const;

  AdmissionLimits limits_;
  int32_t queued_requests_ = 0;
  int64_t queued_tokens_ = 0;
  double throughput_ = 0.0;
};

namespace detail {

// The deltas of one request, from the engine thread to the reader.
class TokenChannel {
 public:
  TokenChannel() = default;
  // Deltas go straight to `sink` (on the pushing thread) instead of the queue.
  explicit TokenChannel(DeltaCallback sink) : sink_(std::move(sink)) {}
  void push(StreamDelta delta);      // a delta with `finish` set closes the channel
  std::optional<StreamDelta> pop();  // blocks; nullopt after the closing delta was popped
  bool closed() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StreamDelta> deltas_;
  bool closed_ = false;     // the closing delta was pushed
  bool delivered_ = false;  // ... and popped
  DeltaCallback sink_;
};

}  // namespace detail

// A validated request on its way to the engine thread. The Sampler and StopChecker were built
// (and so validated) on the submitting thread; from here on the engine thread owns them.
struct PendingRequest {
  SequenceRequest sequence;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StopChecker> stopper;
  std::shared_ptr<detail::TokenChannel> channel;
  SteadyTime submitted;
};

class RequestQueue {
 public:
  explicit RequestQueue(AdmissionLimits limits);

  // Admits (or throws RequestRejected) and queues the request for the engine thread.
  void submit(PendingRequest request, std::optional<SteadyTime> deadline);
  void cancel(SequenceId id);
  void stop();  // later submits are rejected with kShuttingDown

  struct Work {
    std::vector<PendingRequest> submissions;
    std::vector<SequenceId> cancels;
    bool stopping = false;
  };
  // What arrived since the last call; when `block` and nothing arrived, waits for something
  // (or until `wake_at`, when given: the engine's next timed chore, such as a session expiry).
  Work take(bool block, std::optional<SteadyTime> wake_at = std::nullopt);

  // Engine-thread reports for admission control.
  void left_queue(int32_t prompt_tokens);
  void set_throughput(double tokens_per_s);

 private:
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  AdmissionControl admission_;
  std::vector<PendingRequest> submissions_;
  std::vector<SequenceId> cancels_;
  bool stopping_ = false;
};

}  // namespace autoglm
