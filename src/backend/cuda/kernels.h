// Host launchers of the CUDA backend's elementwise and row kernels (kernels.cu): weight
// conversion, FP8 row quantization, embedding gather, RMSNorm fused with the residual add (and
// GLM-4's post-norms), the q/k-norm + RoPE + split of the fused QKV projection, SwiGLU, and a plain
// paged attention for head sizes the optimised attention (attention.h) does not cover. Every kernel
// computes in fp32 over BF16/FP16 storage; the residual stream is kept in fp32. Each launcher
// checks the launch and throws autoglm::Error on failure. Thread ownership: called by whoever
// drives the stream (the engine thread); all work is asynchronous on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/attention.h"
#include "backend/row_sampling.h"
#include "core/dtype.h"

namespace autoglm::cuda {

inline constexpr int32_t kMaxHeadDim = 256;  // qkv_norm_rope and the fallback attention

// dst[i] = src[i] converted, for F32/F16/BF16 on either side.
void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t count,
             cudaStream_t stream);

// The largest finite FP8 E4M3 magnitude.
inline constexpr float kE4m3Max = 448.0f;

// FP8 E4M3 with one fp32 scale per row, for the FP8-weight projections (Gemm::linear_fp8): the
// weights once at load (a scale per output channel) and each projection's input every step (a
// scale per token). For each of `rows` rows of src [rows][cols] (F32, F16 or BF16) with largest
// magnitude a: dst[r][c] = e4m3(src[r][c] * (448 / a)) (fp32 product, round to nearest even,
// saturating) and scales[r] = a / 448, so that src ~ dst * scale; an all-zero row gets scale 1.
void quantize_rows_e4m3(const void* src, DType src_type, int64_t rows, int64_t cols, void* dst,
                        float* scales, cudaStream_t stream);

// A step's token rows: row ids[t] of table [vocab][hidden] (in the activation type). An id
// previous_sample_token(r) (< 0) reads previous[r].token instead (overlapped scheduling feeds
// the previous step's samples back on the device); a token outside [0, vocab) reads row 0
// (a non-finite row's sample, whose request ends: the step only needs a valid row).
struct EmbeddingSource {
  const int32_t* ids = nullptr;
  const RowSample* previous = nullptr;
  int64_t vocab = 0;
  const void* table = nullptr;
};

// x[t][:] = float(token t's row)[:] for t < n_tokens.
void embedding_gather(const EmbeddingSource& e, int32_t n_tokens, ActType type, int64_t hidden,
                      float* x, cudaStream_t stream);

// A sublayer's output as residual_add_norm takes it: `act`, [n_rows][hidden] in the activation
// type; or `parts`, n_parts fp32 arrays [n_parts][n_rows][hidden] whose sum, rounded to the
// activation type as a projection's output would be, is the delta (a projection whose K was
// split, Gemm::linear_k_split); or neither (no delta).
struct Delta {
  const void* act = nullptr;
  const float* parts = nullptr;
  int32_t n_parts = 0;
};

// FP8 E4M3 copies of a kernel's output rows, [rows][width] bytes and a scale per row, exactly as
// quantize_rows_e4m3 would make them from that output (bytes and scales both set, or neither).
struct Fp8Rows {
  void* bytes = nullptr;
  float* scales = nullptr;
};

// For each of n_rows rows of the fp32 residual stream x [n_rows][hidden]:
//   if delta:  d = post_w ? rmsnorm(delta) * post_w : delta;  x += d
//   if norm_w: out = rmsnorm(x) * norm_w   (out in `type`), and its FP8 rows into out8 when set
//              (the next projection's input for an FP8-weight model: no separate quantize pass)
// post_w and norm_w are fp32 [hidden] or nullptr.
void residual_add_norm(float* x, Delta delta, const float* post_w, const float* norm_w, void* out,
                       int32_t n_rows, int64_t hidden, float eps, ActType type, cudaStream_t stream,
                       Fp8Rows out8 = {});

// embedding_gather, then residual_add_norm(x, {}, nullptr, norm_w, out, ...) in one launch (a
// step's first norm), with the same results.
void embedding_norm(const EmbeddingSource& e, int32_t n_tokens, const float* norm_w, float* x,
                    void* out, int64_t hidden, float eps, ActType type, cudaStream_t stream,
                    Fp8Rows out8 = {});

// out[r] = rmsnorm(x[rows[r]]) * w for r < n_rows (the final norm of the logits rows only).
void gather_rms_norm(const float* x, const int32_t* rows, int32_t n_rows, int64_t hidden,
                     const float* w, float eps, void* out, ActType type, cudaStream_t stream);

struct QkvLayout {
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;  // <= kMaxHeadDim
  int32_t rotary_dim = 0;
  bool interleaved = false;  // GLM's adjacent pairs; else NeoX halves
};

// Where qkv_norm_rope puts k and v: the arrays k, v [n][kv_heads * hd], or, when `slots` is
// set, straight into the paged KV pool (row slots[t] of k_cache / v_cache, laid out as
// PagedKvLayer; a token with slot < 0 writes nothing): RoPE fused with the KV write. `fp8`: the
// pool is FP8 E4M3 in PagedKvLayer's FP8 layout (slots required), blocks of `block_size`.
struct KvDestination {
  void* k = nullptr;
  void* v = nullptr;
  const int32_t* slots = nullptr;
  bool fp8 = false;
  int32_t block_size = 16;
};

// Splits qkv [n_tokens][(num_heads + 2 * num_kv_heads) * head_dim] into q [n][heads * hd] and
// k, v (see KvDestination); q and k heads are RMS-normed (when q_norm/k_norm, fp32 [hd], are
// given) and then rotated with row positions[t] of the fp32 tables cos/sin
// [max_position][rotary_dim / 2].
void qkv_norm_rope(const void* qkv, const int32_t* positions, int32_t n_tokens,
                   const QkvLayout& layout, const float* q_norm, const float* k_norm, float eps,
                   const float* rope_cos, const float* rope_sin, void* q, KvDestination kv,
                   ActType type, cudaStream_t stream);

// out[t][i] = silu(gate_up[t][i]) * gate_up[t][inter + i]: gate rows first, as HF fuses them.
void silu_mul(const void* gate_up, int32_t n_tokens, int64_t inter, void* out, ActType type,
              cudaStream_t stream);

// The same contract as paged_attention in attention.h, done plainly (one warp per token and
// head, online softmax): used for head sizes the optimised kernels reject.
void paged_attention_plain(const AttentionBatch& batch, const AttentionShape& shape, const void* q,
                           PagedKvLayer kv, void* out, ActType type, cudaStream_t stream);

}  // namespace autoglm::cuda
