// See gemm.h. Row-major y = x W^T is column-major y^T = W^T x^T: cuBLASLt's A is W seen as a
// column-major [k, n] matrix (transposed), B is x seen as column-major [k, m], D is y^T
// column-major [n, m], so the BIAS epilogue (one value per row of D) adds bias[n].
#include "backend/cuda/gemm.h"

#include <string>

#include "core/error.h"

namespace autoglm::cuda {
namespace {

void check_lt(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail(ErrorCode::kInternal, std::string("cuBLASLt: ") + what + " failed with status " +
                                 std::to_string(static_cast<int>(status)));
}

cudaDataType_t data_type(ActType t) {
  return t == ActType::kBF16 ? CUDA_R_16BF : CUDA_R_16F;
}

}  // namespace

Gemm::Gemm(void* workspace, size_t workspace_bytes)
    : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  check_lt(cublasLtCreate(&handle_), "cublasLtCreate");
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) destroy(p);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void Gemm::destroy(Plan& p) {
  if (p.desc != nullptr) cublasLtMatmulDescDestroy(p.desc);
  if (p.a != nullptr) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b != nullptr) cublasLtMatrixLayoutDestroy(p.b);
  if (p.d != nullptr) cublasLtMatrixLayoutDestroy(p.d);
  p = Plan{};
}

Gemm::Plan& Gemm::plan(const Key& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  const auto [m, n, k, type_index, out_f32, has_bias, parts, fp8] = key;
  const cudaDataType_t act_type = data_type(static_cast<ActType>(type_index));
  const cudaDataType_t in_type = fp8 ? CUDA_R_8F_E4M3 : act_type;
  const cudaDataType_t out_type = out_f32 ? CUDA_R_32F : act_type;
  Plan p;
  try {
    check_lt(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc create");
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                            sizeof trans_a),
             "set TRANSA");
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                            sizeof trans_b),
             "set TRANSB");
    if (fp8) {
      // A is W (one scale per row of D: per output channel), B is x (one per column: per token).
      const cublasLtMatmulMatrixScale_t outer = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      for (const auto attribute :
           {CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_DESC_B_SCALE_MODE}) {
        check_lt(cublasLtMatmulDescSetAttribute(p.desc, attribute, &outer, sizeof outer),
                 "set SCALE_MODE");
      }
      // The heuristic finds no algorithm while the scale pointers are unset; each call sets
      // its own (linear_fp8), so an aligned placeholder stands in for the query.
      for (const auto attribute :
           {CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER}) {
        set_pointer(p, attribute, workspace_, "set SCALE_POINTER");
      }
    }
    if (has_bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                              sizeof epilogue),
               "set EPILOGUE");
    }
    // With K in parts, part i is columns [i k / parts, (i + 1) k / parts) of W and x (a batch
    // stride of k / parts elements, the leading dimension still k) and its own [m][n] output.
    const int64_t part_k = k / parts;
    check_lt(cublasLtMatrixLayoutCreate(&p.a, in_type, part_k, n, k), "layout A");
    check_lt(cublasLtMatrixLayoutCreate(&p.b, in_type, part_k, m, k), "layout B");
    check_lt(cublasLtMatrixLayoutCreate(&p.d, out_type, n, m, n), "layout D");
    const auto batch = [parts](cublasLtMatrixLayout_t layout, int64_t stride) {
      const int32_t count = parts;
      check_lt(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                sizeof count),
               "set BATCH_COUNT");
      check_lt(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                &stride, sizeof stride),
               "set STRIDED_BATCH_OFFSET");
    };
    if (parts > 1) {
      batch(p.a, part_k);
      batch(p.b, part_k);
      batch(p.d, n * m);
    }
    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "preference create");
    const uint64_t ws = workspace_bytes_;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                         sizeof ws);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.d,
                                                                 p.d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      fail(ErrorCode::kUnsupported, "cuBLASLt: no algorithm for a " + std::to_string(m) + "x" +
                                        std::to_string(n) + "x" + std::to_string(k) +
                                        (fp8 ? " FP8" : "") + " matmul");
    }
    p.algo = result.algo;
  } catch (...) {
    destroy(p);
    throw;
  }
  return plans_.emplace(key, p).first->second;
}

void Gemm::set_pointer(Plan& p, cublasLtMatmulDescAttributes_t attribute, const void* pointer,
                       const char* what) {
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, attribute, &pointer, sizeof pointer), what);
}

void Gemm::linear(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n,
                  int64_t k, ActType type, bool out_f32, cudaStream_t stream) {
  if (m == 0) return;
  Plan& p = plan(Key{m, n, k, static_cast<int>(type), out_f32, bias != nullptr, 1, false});
  if (bias != nullptr) set_pointer(p, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "set BIAS_POINTER");
  matmul(p, x, w, y, stream);
}

void Gemm::linear_fp8(const void* x8, const float* x_scale, const void* w8, const float* w_scale,
                      const void* bias, void* y, int64_t m, int64_t n, int64_t k, ActType type,
                      cudaStream_t stream) {
  if (k % 16 != 0) {
    fail(ErrorCode::kInvalidArgument,
         "cuBLASLt: an FP8 matmul needs k a multiple of 16, not " + std::to_string(k));
  }
  if (m == 0) return;
  Plan& p = plan(Key{m, n, k, static_cast<int>(type), false, bias != nullptr, 1, true});
  if (bias != nullptr) set_pointer(p, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "set BIAS_POINTER");
  set_pointer(p, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, w_scale, "set A_SCALE_POINTER");
  set_pointer(p, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, x_scale, "set B_SCALE_POINTER");
  matmul(p, x8, w8, y, stream);
}

void Gemm::matmul(const Plan& p, const void* x, const void* w, void* y, cudaStream_t stream) {
  const float alpha = 1.0f, beta = 0.0f;
  check_lt(cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, y, p.d, y, p.d, &p.algo,
                          workspace_, workspace_bytes_, stream),
           "cublasLtMatmul");
}

void Gemm::linear_k_split(const void* x, const void* w, float* y_parts, int64_t m, int64_t n,
                          int64_t k, int parts, ActType type, cudaStream_t stream) {
  if (parts < 1 || k % (8 * parts) != 0) {
    fail(ErrorCode::kInvalidArgument, "cuBLASLt: k " + std::to_string(k) + " does not split into " +
                                          std::to_string(parts) + " parts of a multiple of 8");
  }
  if (m == 0) return;
  matmul(plan(Key{m, n, k, static_cast<int>(type), true, false, parts, false}), x, w, y_parts,
         stream);
}

}  // namespace autoglm::cuda
