// The test-only fault-injecting Backend decorator (see fault_injection.h).
// Thread ownership: see fault_injection.h.
#include "backend/fault_injection.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>

#include "core/error.h"

namespace autoglm {

FaultSpec parse_fault_spec(std::string_view spec) {
  const auto bad = [&](std::string_view why) {
    fail(ErrorCode::kInvalidArgument, "fault injection spec '" + std::string(spec) + "': " +
                                          std::string(why) + " (expected throw:N, nan:N or hang)");
  };
  const size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  FaultSpec out;
  if (kind == "throw") {
    out.kind = FaultSpec::Kind::kThrow;
  } else if (kind == "nan") {
    out.kind = FaultSpec::Kind::kNan;
  } else if (kind == "hang") {
    out.kind = FaultSpec::Kind::kHang;
  } else {
    bad("unknown fault");
  }
  if (colon == std::string_view::npos) return out;
  if (out.kind == FaultSpec::Kind::kHang) bad("hang takes no count");
  const std::string_view digits = spec.substr(colon + 1);
  int32_t count = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || count < 1 ||
      count > 1'000'000) {
    bad("the count must be an integer from 1 to 1000000");
  }
  out.count = count;
  return out;
}

FaultInjectingBackend::FaultInjectingBackend(std::unique_ptr<Backend> inner, FaultSpec spec)
    : inner_(std::move(inner)), spec_(spec), remaining_(spec.count) {}

void FaultInjectingBackend::forward(const ForwardBatch& batch, std::span<float> logits) {
  if (remaining_ <= 0) {
    inner_->forward(batch, logits);
    return;
  }
  switch (spec_.kind) {
    case FaultSpec::Kind::kThrow:
      --remaining_;
      fail(ErrorCode::kInternal, "injected backend fault (throw)");
    case FaultSpec::Kind::kNan:
      --remaining_;
      inner_->forward(batch, logits);
      std::fill(logits.begin(), logits.end(), std::numeric_limits<float>::quiet_NaN());
      return;
    case FaultSpec::Kind::kHang: {
      remaining_ = 0;
      std::unique_lock lock(mutex_);
      released_cv_.wait(lock, [this] { return released_; });
      fail(ErrorCode::kInternal, "injected backend fault (hang) released at shutdown");
    }
  }
}

void FaultInjectingBackend::release() {
  {
    std::lock_guard lock(mutex_);
    released_ = true;
  }
  released_cv_.notify_all();
}

}  // namespace autoglm
