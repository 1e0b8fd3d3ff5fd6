// See backend.h: the host-side default of forward_sample, for backends whose logits live in
// host memory (the CPU backend) or that do not sample on the device.
// Thread ownership: the engine thread (a Backend is driven by one thread).
#include "backend/backend.h"

#include <algorithm>
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

void resolve_previous_samples(std::span<const int32_t> ids, std::span<const int32_t> previous,
                              int32_t vocab_size, std::vector<int32_t>& resolved) {
  resolved.assign(ids.begin(), ids.end());
  for (int32_t& id : resolved) {
    if (id >= 0) continue;
    const int64_t row = -1 - static_cast<int64_t>(id);
    if (row >= static_cast<int64_t>(previous.size())) {
      fail(ErrorCode::kInternal, "a batch names sample row " + std::to_string(row) +
                                     " of a previous step that had " +
                                     std::to_string(previous.size()) + " rows");
    }
    const int32_t token = previous[static_cast<size_t>(row)];
    id = token >= 0 && token < vocab_size ? token : 0;
  }
}

void Backend::submit_sample(const ForwardBatch& batch, const SampleBatch& sampling) {
  if (queued_.size() >= kMaxStepsInFlight) {
    fail(ErrorCode::kInternal,
         "submit_sample: " + std::to_string(queued_.size()) + " steps are already queued");
  }
  ForwardBatch b = batch;
  resolve_previous_samples(batch.token_ids, previous_tokens_, vocab_size(), resolved_ids_);
  b.token_ids = resolved_ids_;
  previous_tokens_.clear();  // a failed step leaves no samples to feed back
  std::vector<RowSample> out(batch.logits_rows.size());
  forward_sample(b, sampling, out);
  for (const RowSample& s : out) previous_tokens_.push_back(s.token);
  queued_.push_back(std::move(out));
}

void Backend::collect_sample(std::span<RowSample> out) {
  if (queued_.empty()) fail(ErrorCode::kInternal, "collect_sample: no step is queued");
  const std::vector<RowSample>& front = queued_.front();
  if (out.size() != front.size()) {
    fail(ErrorCode::kInternal, "collect_sample: " + std::to_string(front.size()) + " samples for " +
                                   std::to_string(out.size()) + " outputs");
  }
  std::copy(front.begin(), front.end(), out.begin());
  queued_.pop_front();
}

}  // namespace autoglm
