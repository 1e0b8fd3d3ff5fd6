// Error checking and owning handles for the CUDA runtime in host code: every runtime call's
// status becomes an autoglm::Error naming the call site, and device/pinned allocations are
// freed by RAII; plus the pointer-alignment test the kernel launchers pick vector paths by. Thread
// ownership: none (helpers); an object belongs to whoever holds it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace autoglm::cuda {

// Whether `p` is a multiple of `bytes` (a launcher's test for its 8/16-byte vector path).
inline bool aligned_to(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// A measuring switch: on unless the environment variable `name` is "0".
inline bool switch_on(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr || std::strcmp(value, "0") != 0;
}

// Throws autoglm::Error(kInternal) when `status` is not cudaSuccess; `what` names the call.
void check_cuda(cudaError_t status, const char* what);
// After a kernel launch: the launch's own error (bad configuration), if any.
void check_launch(const char* kernel);

#define AUTOGLM_CUDA_CHECK(call) ::autoglm::cuda::check_cuda((call), #call)

std::string format_gib(double bytes);  // "12.34 GiB"

enum class MemoryKind { kDevice, kPinnedHost };

// One cudaMalloc'd (kDevice) or cudaMallocHost'd (kPinnedHost) region, freed on destruction.
template <MemoryKind kKind>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  CudaBuffer(size_t bytes, const char* what);  // throws kResourceExhausted with the numbers
  ~CudaBuffer() { reset(); }
  CudaBuffer(CudaBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  void reset();

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
using DeviceBuffer = CudaBuffer<MemoryKind::kDevice>;
using PinnedBuffer = CudaBuffer<MemoryKind::kPinnedHost>;

// Hands out 256-byte-aligned pieces of one DeviceBuffer (cuBLASLt's preferred alignment), so
// that a forward step never allocates. plan() mode only counts bytes.
class DeviceArena {
 public:
  static constexpr size_t kAlign = 256;
  static size_t round_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
  DeviceArena() = default;  // counting mode: take() returns nullptr and adds up sizes
  explicit DeviceArena(DeviceBuffer buffer) : buffer_(std::move(buffer)) {}
  void* take(size_t bytes);
  template <typename T>
  T* take_n(size_t count) {
    return static_cast<T*>(take(count * sizeof(T)));
  }
  size_t used() const { return used_; }
  void* base() const { return buffer_.get(); }

 private:
  DeviceBuffer buffer_;
  size_t used_ = 0;
};

// An owned stream / event.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  // `timing`: cudaEventElapsedTime may read it (a little dearer to record).
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace autoglm::cuda
