// See cuda_check.h.
#include "backend/cuda/cuda_check.h"

#include <cstdio>

#include "core/error.h"

namespace autoglm::cuda {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  fail(ErrorCode::kInternal, std::string("CUDA: ") + what + " failed: " + cudaGetErrorName(status) +
                                 " (" + cudaGetErrorString(status) + ")");
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status == cudaSuccess) return;
  fail(ErrorCode::kInternal, std::string("CUDA: launching ") + kernel +
                                 " failed: " + cudaGetErrorName(status) + " (" +
                                 cudaGetErrorString(status) + ")");
}

std::string format_gib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

template <MemoryKind kKind>
CudaBuffer<kKind>::CudaBuffer(size_t bytes, const char* what) : bytes_(bytes) {
  if (bytes == 0) return;
  const bool device = kKind == MemoryKind::kDevice;
  const cudaError_t status = device ? cudaMalloc(&ptr_, bytes) : cudaMallocHost(&ptr_, bytes);
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();  // clear the sticky-free error so later calls are not blamed
    fail(ErrorCode::kResourceExhausted,
         std::string(device ? "CUDA: cannot allocate " : "CUDA: cannot pin ") + format_gib(bytes) +
             (device ? " for " : " of host memory for ") + what + ": " +
             cudaGetErrorString(status));
  }
}

template <MemoryKind kKind>
void CudaBuffer<kKind>::reset() {
  if (ptr_ != nullptr) {
    if constexpr (kKind == MemoryKind::kDevice) {
      cudaFree(ptr_);
    } else {
      cudaFreeHost(ptr_);
    }
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

template class CudaBuffer<MemoryKind::kDevice>;
template class CudaBuffer<MemoryKind::kPinnedHost>;

void* DeviceArena::take(size_t bytes) {
  const size_t offset = used_;
  used_ += round_up(bytes);
  if (buffer_.get() == nullptr) return nullptr;
  if (used_ > buffer_.bytes()) {
    fail(ErrorCode::kInternal, "CUDA: workspace arena overflow (planning and use disagree)");
  }
  return static_cast<char*>(buffer_.get()) + offset;
}

Stream::Stream() {
  AUTOGLM_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
}
Stream::~Stream() {
  if (s_ != nullptr) cudaStreamDestroy(s_);
}

Event::Event(bool timing) {
  AUTOGLM_CUDA_CHECK(
      cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (e_ != nullptr) cudaEventDestroy(e_);
}

}  // namespace autoglm::cuda
