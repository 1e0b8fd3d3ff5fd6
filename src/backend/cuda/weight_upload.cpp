// See weight_upload.h.
#include "backend/cuda/weight_upload.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/kernels.h"

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

void WeightUploader::upload(const void* src, DType src_type, size_t count, void* dst,
                            DType dst_type) {
  const size_t src_size = dtype_size(src_type);
  const size_t dst_size = dtype_size(dst_type);
  const size_t chunk_elems = kChunkBytes / src_size;
  for (size_t first = 0; first < count; first += chunk_elems) {
    const size_t n = std::min(chunk_elems, count - first);
    const int slot = next_slot_;
    next_slot_ ^= 1;
    // The slot's previous DMA (and conversion) must be done before its buffers are reused.
    AUTOGLM_CUDA_CHECK(cudaEventSynchronize(free_[slot].get()));
    std::memcpy(pinned_[slot].get(), static_cast<const char*>(src) + first * src_size,
                n * src_size);
    char* out = static_cast<char*>(dst) + first * dst_size;
    if (src_type == dst_type) {
      AUTOGLM_CUDA_CHECK(
          cudaMemcpyAsync(out, pinned_[slot].get(), n * src_size, cudaMemcpyHostToDevice, stream_));
    } else {
      AUTOGLM_CUDA_CHECK(cudaMemcpyAsync(staging_[slot].get(), pinned_[slot].get(), n * src_size,
                                         cudaMemcpyHostToDevice, stream_));
      convert(staging_[slot].get(), src_type, out, dst_type, n, stream_);
    }
    AUTOGLM_CUDA_CHECK(cudaEventRecord(free_[slot].get(), stream_));
    done_ += n * src_size;
    if (progress_) progress_(done_, total_);
  }
}

void WeightUploader::finish() {
  AUTOGLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace autoglm::cuda
