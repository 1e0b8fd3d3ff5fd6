// Linear layers on cuBLASLt: y[M, N] = x[M, K] * W[N, K]^T (+ bias[N]) with row-major HF
// weights, BF16/FP16 operands (or FP8 E4M3 ones with a scale per row of x and of W) and fp32
// accumulation (CUBLAS_COMPUTE_32F); the output is the activation type or fp32 (logits). The bias
// is fused through the BIAS epilogue. The heuristic's choice is cached per shape, and the workspace
// is allocated once, so a call after the first of its shape costs a host map lookup and one launch.
// Thread ownership: one Gemm per backend, used by the engine thread only.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/attention.h"

namespace autoglm::cuda {

class Gemm {
 public:
  Gemm(void* workspace, size_t workspace_bytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  static constexpr size_t kWorkspaceBytes = 32u << 20;

  // x [m][k] and w [n][k] in `type`; y [m][n] in `type`, or fp32 when out_f32; bias [n] (or
  // nullptr) in y's type.
  void linear(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n,
              int64_t k, ActType type, bool out_f32, cudaStream_t stream);

  // linear() over FP8 E4M3 operands x8 [m][k] and w8 [n][k] (quantize_rows_e4m3, kernels.h):
  // y[i][j] = x_scale[i] * w_scale[j] * sum_k x8[i][k] w8[j][k] (+ bias[j]), y and bias in
  // `type`, the scales applied by cuBLASLt's outer-vector scaling on the FP8 tensor cores.
  // Needs k % 16 == 0.
  void linear_fp8(const void* x8, const float* x_scale, const void* w8, const float* w_scale,
                  const void* bias, void* y, int64_t m, int64_t n, int64_t k, ActType type,
                  cudaStream_t stream);

  // linear() without bias, K split into `parts` equal slices, each slice's product written in
  // fp32 to y_parts [parts][m][n] by one strided-batched launch: the sum of the parts is y. For
  // consumers that sum them anyway (residual_add_norm's Delta::parts), this replaces cuBLASLt's
  // own split-K, whose reduction is a second kernel. Needs k % (8 * parts) == 0.
  void linear_k_split(const void* x, const void* w, float* y_parts, int64_t m, int64_t n, int64_t k,
                      int parts, ActType type, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // m, n, k, output ActType, fp32 output, bias, K parts, FP8 operands
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool, bool, int, bool>;
  Plan& plan(const Key& key);
  void matmul(const Plan& p, const void* x, const void* w, void* y, cudaStream_t stream);
  void set_pointer(Plan& p, cublasLtMatmulDescAttributes_t attribute, const void* pointer,
                   const char* what);
  static void destroy(Plan& p);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Key, Plan> plans_;
};

}  // namespace autoglm::cuda
