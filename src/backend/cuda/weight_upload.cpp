// See weight_upload.h.
#include "backend/cuda/weight_upload.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace autoglm::cuda {

WeightUploader::WeightUploader(cudaStream_t stream, uint64_t total_bytes,
                               std::function<void(uint64_t, uint64_t)> progress)
    : stream_(stream),
      total_(total_bytes),
      progress_(std::move(progress)),
      pinned_{PinnedBuffer(kChunkBytes, "weight staging"),
              PinnedBuffer(kChunkBytes, "weight staging")},
      staging_{DeviceBuffer(kChunkBytes, "weight conversion staging"),
               DeviceBuffer(kChunkBytes, "weight conversion staging")} {}

int WeightUploader::stage(const void* src, size_t bytes, void* to_device) {
  const int slot = next_slot_;
  next_slot_ ^= 1;
  // The slot's previous DMA (and conversion) must be done before its buffers are reused.
  AUTOGLM_CUDA_CHECK(cudaEventSynchronize(free_[slot].get()));
  std::memcpy(pinned_[slot].get(), src, bytes);
  void* target = to_device != nullptr ? to_device : staging_[slot].get();
  AUTOGLM_CUDA_CHECK(
      cudaMemcpyAsync(target, pinned_[slot].get(), bytes, cudaMemcpyHostToDevice, stream_));
  return slot;
}

void WeightUploader::release(int slot, size_t bytes) {
  AUTOGLM_CUDA_CHECK(cudaEventRecord(free_[slot].get(), stream_));
  done_ += bytes;
  if (progress_) progress_(done_, total_);
}

void WeightUploader::upload(const void* src, DType src_type, size_t count, void* dst,
                            DType dst_type) {
  const size_t src_size = dtype_size(src_type);
  const size_t dst_size = dtype_size(dst_type);
  const size_t chunk_elems = kChunkBytes / src_size;
  for (size_t first = 0; first < count; first += chunk_elems) {
    const size_t n = std::min(chunk_elems, count - first);
    char* out = static_cast<char*>(dst) + first * dst_size;
    const bool same = src_type == dst_type;
    const int slot =
        stage(static_cast<const char*>(src) + first * src_size, n * src_size, same ? out : nullptr);
    if (!same) convert(staging_[slot].get(), src_type, out, dst_type, n, stream_);
    release(slot, n * src_size);
  }
}

void WeightUploader::upload_rows_e4m3(const void* src, DType src_type, int64_t rows, int64_t cols,
                                      void* dst, float* scales) {
  const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(src_type);
  if (row_bytes > kChunkBytes) {
    fail(ErrorCode::kUnsupported, "CUDA backend: a row of " + std::to_string(cols) +
                                      " weights is too long to quantize in one staging chunk");
  }
  const int64_t chunk_rows = static_cast<int64_t>(kChunkBytes / row_bytes);
  for (int64_t first = 0; first < rows; first += chunk_rows) {
    const int64_t n = std::min(chunk_rows, rows - first);
    const size_t bytes = static_cast<size_t>(n) * row_bytes;
    const int slot = stage(static_cast<const char*>(src) + first * row_bytes, bytes, nullptr);
    quantize_rows_e4m3(staging_[slot].get(), src_type, n, cols,
                       static_cast<char*>(dst) + first * cols, scales + first, stream_);
    release(slot, bytes);
  }
}

void WeightUploader::finish() {
  AUTOGLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace autoglm::cuda
