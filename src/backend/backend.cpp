// See backend.h: the host-side default of forward_sample, for backends whose logits live in
// host memory (the CPU backend) or that do not sample on the device.
// Thread ownership: the engine thread (a Backend is driven by one thread).
#include "backend/backend.h"

#include <string>

#include "backend/row_sampler.h"
#include "core/error.h"

namespace autoglm {

void Backend::forward_sample(const ForwardBatch& batch, const SampleBatch& sampling,
                             std::span<RowSample> out) {
  const size_t rows = batch.logits_rows.size();
  if (sampling.rows.size() != rows || out.size() != rows) {
    fail(ErrorCode::kInternal, "forward_sample: " + std::to_string(rows) + " logits rows, " +
                                   std::to_string(sampling.rows.size()) + " sampling rows, " +
                                   std::to_string(out.size()) + " outputs");
  }
  const size_t vocab = static_cast<size_t>(vocab_size());
  host_logits_.resize(rows * vocab);
  forward(batch, host_logits_);
  for (size_t r = 0; r < rows; ++r) {
    const RowSamplingParams& p = sampling.rows[r];
    out[r] = sample_row(
        std::span<float>(host_logits_.data() + r * vocab, vocab), p,
        sampling.adjustments.subspan(static_cast<size_t>(p.adjust_begin),
                                     static_cast<size_t>(p.adjust_end - p.adjust_begin)));
  }
}

}  // namespace autoglm
