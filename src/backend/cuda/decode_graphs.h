// CUDA graphs of the decode step. A decode step (every sequence feeds one token) is a fixed
// sequence of ~10 launches per layer; at small batches the GPU finishes each faster than the
// host can launch the next, so the step is launch-bound. Replaying a captured graph submits the
// whole step at once. A graph bakes in its launch shapes and buffer addresses, so steps are
// bucketed: the batch is padded up to a batch bucket (padding sequences write no KV and their
// samples are dropped) and the attention split plan is made for a context bucket (sequences
// shorter than it skip the empty splits). One graph per (batch bucket, context bucket), captured
// the first time that pair is seen and replayed afterwards.
// Thread ownership: owned by the CudaBackend, used by the engine thread only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

namespace autoglm::cuda {

// The padded batch size a decode step of `n_seqs` runs at: 1, 2, 4, 8, then multiples of 8 up
// to 64, then multiples of 32 (at most `max_seqs`). Buckets are small at small batches, where
// the padding would cost a visible share of the step.
int32_t decode_batch_bucket(int32_t n_seqs, int32_t max_seqs);

// The context length the attention plan of a step whose longest sequence holds `max_context`
// tokens is made for: the next power of two from 256, at most `limit`.
int32_t decode_context_bucket(int32_t max_context, int64_t limit);

class DecodeGraphs {
 public:
  DecodeGraphs() = default;
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Launches the graph of (batch, context) on `stream`; the first time, `record` is run under
  // stream capture (it must only enqueue work on `stream`) and the result instantiated.
  void launch(int32_t batch, int32_t context, cudaStream_t stream,
              const std::function<void()>& record);
  size_t size() const { return graphs_.size(); }

 private:
  std::map<std::pair<int32_t, int32_t>, cudaGraphExec_t> graphs_;
};

}  // namespace autoglm::cuda
