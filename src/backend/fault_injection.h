// Test-only fault injection: a Backend decorator that, on command, makes the next N forward
// calls throw, or write NaN logits, or block until released, so the engine's failure handling,
// the server's circuit breaker and the liveness watchdog can be exercised end to end against
// the real engine. Compiled only when the CMake option AUTOGLM_FAULT_INJECTION is ON (test
// builds); packaging builds leave it out, and the setting that installs it does not exist.
// Thread ownership: forward() runs on the engine thread like any Backend; release() may be
// called from any thread (the Engine's destructor) to end a hang.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "backend/backend.h"

namespace autoglm {

struct FaultSpec {
  enum class Kind { kThrow, kNan, kHang };
  Kind kind = Kind::kThrow;
  int32_t count = 1;  // forward calls affected (kHang: the first call blocks, count unused)
};

// "throw:N" (the next N forward calls throw), "nan:N" (they fill every logits row with NaN),
// "hang" (the next call blocks until release()). N defaults to 1 and must be 1..1000000.
// Throws Error(kInvalidArgument) naming the spec otherwise.
FaultSpec parse_fault_spec(std::string_view spec);

class FaultInjectingBackend final : public Backend {
 public:
  FaultInjectingBackend(std::unique_ptr<Backend> inner, FaultSpec spec);

  void forward(const ForwardBatch& batch, std::span<float> logits) override;
  KvPoolShape kv_pool() const override { return inner_->kv_pool(); }
  int32_t vocab_size() const override { return inner_->vocab_size(); }

  // Ends a hang (the blocked call then throws); the Engine calls it
  // before joining its thread so that shutdown never waits on an injected hang.
  void release();

 private:
  std::unique_ptr<Backend> inner_;
  FaultSpec spec_;
  int32_t remaining_;  // engine thread only
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool released_ = false;
};

}  // namespace autoglm
