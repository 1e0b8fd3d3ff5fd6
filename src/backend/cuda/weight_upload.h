// Streaming weights from the memory-mapped checkpoint to the GPU: each tensor is copied in
// chunks through two pinned staging buffers (double-buffered, so reading the mmap for chunk
// i+1 overlaps the DMA of chunk i), and converted on the GPU when the stored type differs from
// the one the backend computes in (F32 checkpoints -> BF16, norms -> fp32), or quantized to
// FP8 E4M3 with a scale per row (an FP8-weight model's projections).
// Thread ownership: used by the loading thread during make_cuda_backend only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>

#include "backend/cuda/cuda_check.h"
#include "core/dtype.h"

namespace autoglm::cuda {

class WeightUploader {
 public:
  static constexpr size_t kChunkBytes = 32u << 20;

  // `progress` (may be empty) is told bytes done out of `total_bytes` (source bytes).
  WeightUploader(cudaStream_t stream, uint64_t total_bytes,
                 std::function<void(uint64_t, uint64_t)> progress);

  // Copies `count` elements of `src_type` from host memory to `dst` (device) as `dst_type`.
  void upload(const void* src, DType src_type, size_t count, void* dst, DType dst_type);
  // Copies a [rows][cols] matrix of `src_type` as FP8 E4M3 rows into `dst` with their scales
  // into `scales` (quantize_rows_e4m3, kernels.h), a chunk of whole rows at a time.
  void upload_rows_e4m3(const void* src, DType src_type, int64_t rows, int64_t cols, void* dst,
                        float* scales);
  // Waits for every copy; afterwards the staging buffers are free.
  void finish();

 private:
  // Takes the next staging slot (once its previous use is done) and starts copying `bytes` of
  // `src` into its pinned buffer and then to `to_device`, or, when that is null, into the slot's
  // device staging buffer, which the caller then converts from; returns the slot.
  int stage(const void* src, size_t bytes, void* to_device);
  void release(int slot, size_t bytes);  // after the slot's last use has been enqueued

  cudaStream_t stream_;
  uint64_t total_, done_ = 0;
  std::function<void(uint64_t, uint64_t)> progress_;
  PinnedBuffer pinned_[2];
  DeviceBuffer staging_[2];  // raw source bytes awaiting conversion
  Event free_[2];            // recorded after the last use of slot i
  int next_slot_ = 0;
};

}  // namespace autoglm::cuda
