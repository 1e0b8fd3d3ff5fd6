// Token selection on the GPU (sampling.cu): the device twin of backend/row_sampler.h, so that a
// step returns only RowSamples (ids and requested logprobs) instead of logits rows.
// Thread ownership: called by whoever drives the stream (the engine thread); asynchronous.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/row_sampling.h"

namespace autoglm::cuda {

// For each of `rows` rows of `logits` [rows][vocab] (fp32, adjusted in place): applies the
// row's adjustments, then selects its token exactly as sample_row() defines, writing out[row].
// params, adjustments, out and scan (sample_scan_bytes(rows, vocab) of scratch) are device
// pointers. Many blocks per row adjust it and find its best token, then one block per row
// selects.
size_t sample_scan_bytes(int32_t rows, int32_t vocab);

// Where the selecting kernel also writes each row's sample: rows[*slot * stride + row], in pinned
// host memory that the device addresses directly (unified addressing), so that a step needs no
// copy back to the host and nothing stands between its last kernel and the next step's first.
// `slot` is a device int the step uploads with its batch arrays, so a graph replays to the
// current step's slot. rows == nullptr: only `out`.
struct HostSamples {
  RowSample* rows = nullptr;
  const int32_t* slot = nullptr;
  int64_t stride = 0;
};
void sample_rows(float* logits, int32_t rows, int32_t vocab, const RowSamplingParams* params,
                 const LogitAdjustment* adjustments, RowSample* out, void* scan,
                 cudaStream_t stream, HostSamples host = {});

}  // namespace autoglm::cuda
