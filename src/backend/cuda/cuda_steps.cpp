// See cuda_backend_impl.h: the queued steps of submit_sample / collect_sample. A step's host
// buffers live in a slot of its own (kSlots of them, round robin), so the host can fill step
// N + 1's uploads while the device still reads step N's; the step's work sits between two timed
// events on the stream, and collect_sample() waits on the end one. Tokens the batch names as
// previous_sample_token(r) are read on the device from buf_.samples, where the previous step's
// sampler left them (the embedding kernel runs before this step's sampler overwrites them). The
// sampler also writes each step's samples into its slot's pinned host rows (sampling.h,
// HostSamples), which the host reads after the end event: no copy back on the stream, whose
// latency sat between one step's last kernel and the next step's first (0.010 ms of a 9B
// batch-1 step on the H200; docs/PERFORMANCE.md).
// Thread ownership: the engine thread, like every CudaBackend method.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "backend/cuda/cuda_backend_impl.h"
#include "core/error.h"

namespace autoglm::cuda {

void CudaBackend::submit_sample(const ForwardBatch& batch, const SampleBatch& sampling) {
  if (submitted_ - collected_ >= kMaxStepsInFlight) {
    fail(ErrorCode::kInternal,
         "cuda backend: " + std::to_string(submitted_ - collected_) + " steps are already queued");
  }
  guarded([&] {
    const size_t n_out = batch.logits_rows.size();
    if (sampling.rows.size() != n_out) {
      fail(ErrorCode::kInternal, "cuda backend: " + std::to_string(n_out) + " logits rows but " +
                                     std::to_string(sampling.rows.size()) + " sampling rows");
    }
    // A failed step may have overwritten part of buf_.samples: nothing may name them after it.
    const int32_t previous_rows = std::exchange(device_sample_rows_, 0);
    StepSlot& slot = current_slot();
    const cudaStream_t s = stream_.get();
    AUTOGLM_CUDA_CHECK(cudaEventRecord(slot.start.get(), s));
    if (sampling.adjustments.size() > kMaxDeviceAdjustments) {
      sample_on_host(batch, sampling, previous_rows, slot);
    } else {
      check_batch(batch, previous_rows);  // bounds the rows before they are copied
      if (const int32_t rows = graph_rows(batch); rows > 0) {
        decode_with_graph(batch, sampling, rows);  // cuda_decode.cpp
      } else {
        DeviceBatch db = pack_batch_arrays(batch);
        pack_sampling(sampling, static_cast<int32_t>(n_out), db);
        upload_packed(db);
        encode_layers(db);
        encode_sampling(db, static_cast<int64_t>(n_out));
      }
      if (n_out > 0 && !mapped_samples_) {
        AUTOGLM_CUDA_CHECK(cudaMemcpyAsync(slot.samples, buf_.samples, n_out * sizeof(RowSample),
                                           cudaMemcpyDeviceToHost, s));
      }
    }
    AUTOGLM_CUDA_CHECK(cudaEventRecord(slot.end.get(), s));
    slot.rows = n_out;
    slot.timed = false;
    device_sample_rows_ = static_cast<int32_t>(n_out);
    ++submitted_;
  });
}

void CudaBackend::sample_on_host(const ForwardBatch& batch, const SampleBatch& sampling,
                                 int32_t previous_rows, StepSlot& slot) {
  ForwardBatch b = batch;
  std::vector<int32_t> resolved;
  if (std::any_of(batch.token_ids.begin(), batch.token_ids.end(),
                  [](int32_t id) { return id < 0; })) {
    // The previous step's samples reach its slot's host buffer once the stream drains.
    AUTOGLM_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    const StepSlot& previous = slots_[(submitted_ + kSlots - 1) % kSlots];
    const RowSample* rows = static_cast<const RowSample*>(previous.samples);
    std::vector<int32_t> tokens;
    for (int32_t r = 0; r < previous_rows; ++r) tokens.push_back(rows[r].token);
    resolve_previous_samples(batch.token_ids, tokens, static_cast<int32_t>(config_.vocab_size),
                             resolved);
    b.token_ids = resolved;
  }
  RowSample* out = static_cast<RowSample*>(slot.samples);
  const size_t n_out = batch.logits_rows.size();
  Backend::forward_sample(b, sampling, std::span<RowSample>(out, n_out));  // forward() syncs
  // The next step may name these samples: they go where the device sampler would have put them.
  if (n_out > 0) {
    AUTOGLM_CUDA_CHECK(cudaMemcpyAsync(buf_.samples, out, n_out * sizeof(RowSample),
                                       cudaMemcpyHostToDevice, stream_.get()));
  }
}

void CudaBackend::collect_sample(std::span<RowSample> out) {
  if (collected_ == submitted_) fail(ErrorCode::kInternal, "cuda backend: no step is queued");
  StepSlot& slot = slots_[collected_ % kSlots];
  if (out.size() != slot.rows) {
    fail(ErrorCode::kInternal, "cuda backend: the queued step has " + std::to_string(slot.rows) +
                                   " samples, not " + std::to_string(out.size()));
  }
  AUTOGLM_CUDA_CHECK(cudaSetDevice(device_));
  const cudaError_t done = cudaEventSynchronize(slot.end.get());
  ++collected_;  // a failed step is gone too: its requests end with the error
  idle_gap_.reset();
  AUTOGLM_CUDA_CHECK(done);
  if (!out.empty()) std::memcpy(out.data(), slot.samples, out.size() * sizeof(RowSample));
  const StepSlot& previous = slots_[(collected_ + kSlots - 2) % kSlots];
  if (collected_ >= 2 && previous.timed) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, previous.end.get(), slot.start.get()) == cudaSuccess) {
      idle_gap_ = std::max(0.0f, ms) * 1e-3;
    } else {
      // The gap is only a metric: its error must not stay behind for the next launch's check.
      (void)cudaGetLastError();
    }
  }
  slot.timed = true;
}

}  // namespace autoglm::cuda
