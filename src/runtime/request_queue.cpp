// See request_queue.h.
#include "runtime/request_queue.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace autoglm {

AdmissionControl::AdmissionControl(AdmissionLimits limits) : limits_(limits) {}

double AdmissionControl::seconds_to_clear(int64_t tokens) const {
  return throughput_ > 0.0 ? static_cast<double>(tokens) / throughput_ : 0.0;
}

void AdmissionControl::admit(int32_t prompt_tokens, int32_t max_tokens,
                             std::optional<SteadyTime> deadline, SteadyTime now) {
  using Reason = RequestRejected::Reason;
  const int64_t total = static_cast<int64_t>(prompt_tokens) + max_tokens;
  const std::string counts = "prompt (" + std::to_string(prompt_tokens) +
                             " tokens) + max_tokens (" + std::to_string(max_tokens) + ")";
  if (limits_.max_context > 0 && total > limits_.max_context) {
    throw RequestRejected(Reason::kTooLong, counts + " exceeds the context of " +
                                                std::to_string(limits_.max_context) + " tokens");
  }
  if (limits_.pool_tokens > 0 && total > limits_.pool_tokens) {
    throw RequestRejected(Reason::kTooLong, counts + " exceeds the KV cache of " +
                                                std::to_string(limits_.pool_tokens) + " tokens");
  }
  if (queued_requests_ + 1 > limits_.max_queued_requests ||
      queued_tokens_ + prompt_tokens > limits_.max_queued_tokens) {
    const double retry = std::max(1.0, std::ceil(seconds_to_clear(queued_tokens_)));
    throw RequestRejected(Reason::kQueueFull,
                          "the request queue is full (" + std::to_string(queued_requests_) +
                              " requests, " + std::to_string(queued_tokens_) + " prompt tokens)",
                          retry);
  }
  if (deadline) {
    const auto needed =
        std::chrono::duration<double>(seconds_to_clear(queued_tokens_ + prompt_tokens));
    if (now + std::chrono::duration_cast<SteadyTime::duration>(needed) > *deadline) {
      throw RequestRejected(Reason::kDeadlineUnreachable,
                            "the request cannot start before its deadline: " +
                                std::to_string(queued_tokens_ + prompt_tokens) +
                                " queued prompt tokens at " + std::to_string(throughput_) +
                                " tokens/s");
    }
  }
  queued_requests_ += 1;
  queued_tokens_ += prompt_tokens;
}

void AdmissionControl::left_queue(int32_t prompt_tokens) {
  queued_requests_ -= 1;
  queued_tokens_ -= prompt_tokens;
}

namespace detail {

void TokenChannel::push(StreamDelta delta) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;  // one closing delta per request, whatever races to end it
    closed_ = delta.finish.has_value();
    if (!sink_) deltas_.push_back(std::move(delta));
  }
  // Only the engine thread pushes, so calling the sink outside the lock keeps the order.
  if (sink_) {
    sink_(std::move(delta));
    return;
  }
  ready_.notify_all();
}

std::optional<StreamDelta> TokenChannel::pop() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !deltas_.empty() || delivered_; });
  if (deltas_.empty()) return std::nullopt;
  StreamDelta delta = std::move(deltas_.front());
  deltas_.pop_front();
  if (delta.finish) delivered_ = true;
  return delta;
}

bool TokenChannel::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

}  // namespace detail

RequestQueue::RequestQueue(AdmissionLimits limits) : admission_(limits) {}

void RequestQueue::submit(PendingRequest request, std::optional<SteadyTime> deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      throw RequestRejected(RequestRejected::Reason::kShuttingDown, "the engine is shutting down");
    }
    admission_.admit(static_cast<int32_t>(request.sequence.prompt.size()),
                     request.sequence.max_tokens, deadline, request.submitted);
    submissions_.push_back(std::move(request));
  }
  arrived_.notify_one();
}

void RequestQueue::cancel(SequenceId id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancels_.push_back(id);
  }
  arrived_.notify_one();
}

void RequestQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  arrived_.notify_all();
}

RequestQueue::Work RequestQueue::take(bool block, std::optional<SteadyTime> wake_at) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto something = [&] { return !submissions_.empty() || !cancels_.empty() || stopping_; };
  if (block && wake_at) {
    arrived_.wait_until(lock, *wake_at, something);
  } else if (block) {
    arrived_.wait(lock, something);
  }
  Work work;
  work.submissions = std::move(submissions_);
  work.cancels = std::move(cancels_);
  submissions_.clear();
  cancels_.clear();
  work.stopping = stopping_;
  return work;
}

void RequestQueue::left_queue(int32_t prompt_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  admission_.left_queue(prompt_tokens);
}

void RequestQueue::set_throughput(double tokens_per_s) {
  std::lock_guard<std::mutex> lock(mutex_);
  admission_.set_throughput(tokens_per_s);
}

}  // namespace autoglm
