// The element-wise math that a kernel and its fused counterpart must compute identically (the
// unfused SwiGLU and RoPE kernels in kernels.cu and the GEMV epilogues in gemv.cu): written with
// explicit rounding intrinsics so that nvcc cannot contract them into FMAs differently in the
// two places, which would make the fused results differ in the last bit.
// Thread ownership: device functions, no state.
#pragma once

namespace autoglm::cuda {

__device__ __forceinline__ float silu_times(float gate, float up) {
  return __fmul_rn(__fdiv_rn(gate, __fadd_rn(1.0f, __expf(-gate))), up);
}

// One element of a rotated pair (a, c): a' = a cos - c sin for the first, c' = c cos + a sin for
// the second; `self` is the element being produced and `other` its partner.
__device__ __forceinline__ float rotate_pair(float self, float other, float cos, float sin,
                                             bool first) {
  return __fmaf_rn(self, cos, __fmul_rn(first ? -other : other, sin));
}

}  // namespace autoglm::cuda
