// Programmatic dependent launch (Hopper): a kernel launched with launch_dependent() may be
// scheduled while the previous kernel on its stream is still draining, hiding the launch and
// ramp-up gap between the ~10 small kernels of each layer (most of a batch-1 decode step's
// overhead beyond the weight reads). Every kernel launched this way must call
// wait_for_previous_kernel() before it reads or writes memory that an earlier kernel may touch:
// that waits until the previous kernel has completed and its writes are visible, so the data
// order is the stream's. Only constant data may be read before it: weights, and the step's
// batch arrays, which a host copy uploads before the step's first kernel. (With the late
// trigger below, called after a kernel's own wait, a kernel also runs only once everything
// before its predecessor has completed; the one-row norm reads x early on that ground: its
// predecessor is a GEMV, which triggers late.)
// Thread ownership: launch_dependent runs on the launching (engine) thread.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "backend/cuda/cuda_check.h"

namespace autoglm::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel on the stream be scheduled once every block of this one has called it
// (or exited); the next kernel still waits for this one's completion before touching memory.
// At one token (the GEMV path; measured at 64 it was a wash) the GEMVs and attention call it
// late, once a block has used all its loads: the next kernel's blocks then take only the slots
// this kernel's exiting blocks free (every block of it is already running), and their launch and
// first weight loads overlap this kernel's drain (measured on the H200, 9B batch-1 step: 4.77 ms
// against 4.87 without; in the GEMVs alone 4.88; calling it at the start of every kernel instead
// made the step 0.2 ms slower, the waiting blocks taking the running kernel's slots, and in the
// GEMVs once their first loads are issued 4.83). The one-block norms call it at their start, so
// that the GEMV after a norm overlaps the drain of the GEMV before it (kernels.cu), and so do
// the one-token QKV and gate_up GEMVs (qkv_trigger_at_start, swiglu_trigger_at_start). A kernel
// launched by an early trigger may run before its predecessor's predecessor has completed.
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether a launch over `tokens` rows calls allow_next_kernel(): at one token only, and not
// with AUTOGLM_CUDA_LATE_TRIGGER=0 (for measuring; read once).
inline bool late_trigger_at(int64_t tokens) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_LATE_TRIGGER");
  return tokens == 1 && enabled;
}

// Whether a one-token decode step's attention reads the batch arrays and the keys older than
// the step before waiting for the QKV kernel (attention_kernel.cuh); not with
// AUTOGLM_CUDA_KV_EARLY=0 (for measuring; read once).
inline bool kv_before_wait_at(int64_t tokens) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_KV_EARLY");
  return late_trigger_at(tokens) && enabled;
}

// Whether a one-token norm calls allow_next_kernel() at its start rather than once its loads are
// issued (kernels.cu); not with AUTOGLM_CUDA_NORM_EARLY_TRIGGER=0 (for measuring; read once).
inline bool norm_trigger_at_start(int64_t tokens) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_NORM_EARLY_TRIGGER");
  return late_trigger_at(tokens) && enabled;
}

// Whether a one-token QKV GEMV (the RoPE/KV-write epilogue) calls allow_next_kernel() at its
// start (gemv.cu): attention then launches once the GEMV's last block is running, and its few
// CTAs copy the older keys in slots that the GEMV's last wave leaves free. No QKV block is then
// still waiting for a slot, so attention's CTAs displace none, whatever the split count. What
// attention reads before its wait (the batch arrays, keys written by earlier steps) no kernel of
// this step writes, so it may run before the kernels ahead of the GEMV have completed. Measured
// 0.003-0.007 / 0.012-0.016 / 0.043-0.050 ms a 9B step at ~160 / 1,000 / 4,000 keys
// (docs/PERFORMANCE.md). Not with AUTOGLM_CUDA_QKV_EARLY_TRIGGER=0 (for measuring; read once).
inline bool qkv_trigger_at_start(int64_t tokens) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_QKV_EARLY_TRIGGER");
  return late_trigger_at(tokens) && enabled;
}

// Whether a one-token gate_up GEMV (the SwiGLU epilogue, BF16 or FP8) calls allow_next_kernel()
// at its start (gemv.cu, gemv_fp8.cu): the down GEMV then launches once gate_up's last block is
// running, and its blocks take the slots that gate_up's last wave frees and stream their first
// weights while it drains, as after a norm; only weights are read before the down GEMV's wait, and
// the norm after it still follows its late trigger. Measured 0.020 ms a 9B step on the H200
// (docs/PERFORMANCE.md). Not with AUTOGLM_CUDA_SWIGLU_EARLY_TRIGGER=0 (for measuring; read once).
inline bool swiglu_trigger_at_start(int64_t tokens) {
  static const bool enabled = switch_on("AUTOGLM_CUDA_SWIGLU_EARLY_TRIGGER");
  return late_trigger_at(tokens) && enabled;
}

// AUTOGLM_CUDA_PDL=0 launches every kernel plainly (for measuring what PDL buys); read once.
inline bool programmatic_launch_enabled() {
  static const bool enabled = switch_on("AUTOGLM_CUDA_PDL");
  return enabled;
}

template <typename... KernelArgs, typename... Args>
void launch_dependent(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block,
                      size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = programmatic_launch_enabled() ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), name);
}

}  // namespace autoglm::cuda
