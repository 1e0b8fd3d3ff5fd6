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

DeviceBuffer::DeviceBuffer(size_t bytes, const char* what) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&ptr_, bytes);
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();  // clear the sticky-free error so later calls are not blamed
    fail(ErrorCode::kResourceExhausted, std::string("CUDA: cannot allocate ") + format_gib(bytes) +
                                            " for " + what + ": " + cudaGetErrorString(status));
  }
}

void DeviceBuffer::reset() {
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

PinnedBuffer::PinnedBuffer(size_t bytes, const char* what) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMallocHost(&ptr_, bytes);
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    fail(ErrorCode::kResourceExhausted, std::string("CUDA: cannot pin ") + format_gib(bytes) +
                                            " of host memory for " + what + ": " +
                                            cudaGetErrorString(status));
  }
}

void PinnedBuffer::reset() {
  if (ptr_ != nullptr) cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

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

Event::Event() {
  AUTOGLM_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming));
}
Event::~Event() {
  if (e_ != nullptr) cudaEventDestroy(e_);
}

}  // namespace autoglm::cuda
