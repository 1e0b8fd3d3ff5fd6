// The CUDA backend's class (internal; users see cuda_backend.h): device copies of the weights
// laid out for the forward (q/k/v and gate/up fused into one matrix each), the preallocated
// step workspace, the paged KV pool, and the stream everything runs on.
// Thread ownership: built on the loading thread, then driven by the engine thread only.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_graphs.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"

namespace autoglm::cuda {

// One layer's device weights. Matrices and biases are in the activation type, norms in fp32;
// nullptr marks what the architecture does not have. With FP8 weights (weights_fp8) the four
// matrices are E4M3 and each *_scale holds its rows' fp32 scales (else nullptr).
struct DeviceLayer {
  void* qkv = nullptr;  // [(heads + 2 * kv_heads) * head_dim][hidden]: q rows, k rows, v rows
  void* qkv_bias = nullptr;
  void* o = nullptr;
  void* o_bias = nullptr;
  void* gate_up = nullptr;  // [2 * inter][hidden]: gate rows, then up rows
  void* gate_up_bias = nullptr;
  void* down = nullptr;
  void* down_bias = nullptr;
  float* input_norm = nullptr;
  float* post_self_attn_norm = nullptr;
  float* post_attention_norm = nullptr;
  float* post_mlp_norm = nullptr;
  float* q_norm = nullptr;
  float* k_norm = nullptr;
  float* qkv_scale = nullptr;
  float* o_scale = nullptr;
  float* gate_up_scale = nullptr;
  float* down_scale = nullptr;
};

// A host tensor to copy into the weight arena (source of the upload pass).
struct UploadJob {
  const void* src;
  DType src_type;
  size_t count;
  void* dst;
  DType dst_type;
  int64_t row_len = 0;          // > 0: quantize rows of this length to E4M3 (dst_type kF8E4M3)
  float* row_scales = nullptr;  // their scales
};

// Per-step device arrays, carved from the workspace arena for the largest allowed step.
struct StepBuffers {
  float* x = nullptr;  // residual stream [tokens][hidden], fp32
  void* h = nullptr;   // normed input of the next projection [tokens][hidden]
  void* qkv = nullptr;
  void *q = nullptr, *attn = nullptr;  // k and v go straight into the KV pool
  void* delta = nullptr;               // o_proj / down_proj output [tokens][hidden]
  void* gate_up = nullptr;
  void* mlp = nullptr;
  void* final_rows = nullptr;  // [logits rows][hidden]
  float* logits = nullptr;     // [logits rows][vocab]
  int32_t* ints = nullptr;     // the step's packed upload (CudaBackend::DeviceBatch)
  void* attention_ws = nullptr;
  size_t attention_ws_bytes = 0;
  void* gemm_ws = nullptr;
  RowSample* samples = nullptr;  // [max_batched_tokens]
  void* sample_scan = nullptr;   // sample_rows' pre-scan, max_logits_rows rows
  float* rope_cos = nullptr;     // [max_context][rotary_dim / 2]
  float* rope_sin = nullptr;
  float* delta_parts = nullptr;  // [kKSplitParts][min(tokens, kKSplitMaxRows)][hidden]
  void* x8 = nullptr;            // FP8 weights: a projection's input in E4M3 [tokens][its K]
  float* x8_scales = nullptr;    // and its rows' scales [tokens]
};

// Logit adjustments (penalised history + logit_bias entries) one step can take on the device;
// a step with more samples on the host instead (long penalised contexts at a large batch).
inline constexpr size_t kMaxDeviceAdjustments = size_t{1} << 18;

// Projections of at most this many rows use the GEMV kernel (gemv.h), larger ones cuBLASLt.
// cuda_gemv_bench on the H200, GLM-4-9B shapes, against cuBLASLt: at m = 1 the GEMV streams the
// weights 1.06-1.19x faster (no split-K reduce); at m = 2 qkv / o / gate_up / down / lm_head
// 1.18 / 1.15 / 0.97 / 1.05 / 1.04x, and the 9B batch-2 step (with the fused epilogues) 5.58 ->
// 5.48 ms; at m = 4 0.81-0.95x (the batch-4 step 5.61 -> 6.58 ms) and at m = 8 0.51-0.71x: the
// GEMV does its FMAs on CUDA cores, not tensor cores.
inline constexpr int64_t kGemvRows = 2;

// Up to this many rows the o and down projections run with K in two fp32 parts that the next
// residual_add_norm sums (CudaBackend::project_delta). cuBLASLt on the H200, GLM-4-9B shapes,
// random BF16 operands: down (K 13,696) 35.7 -> 32.9 us at 64 rows, 37.0 -> 33.6 at 128, 47.0 ->
// 43.7 at 256 (its own split-K adds a reduction kernel); o 18.8 -> 16.7 us at 256 rows; at 512
// rows and more both are slower in parts. The 9B decode step: 0.7-1.5% shorter at 8 and 64 rows,
// unchanged at 256 (docs/PERFORMANCE.md).
inline constexpr int64_t kKSplitMaxRows = 256;
inline constexpr int32_t kKSplitParts = 2;  // K slices of such a projection

// The tensor-core GEMV (gemv.h, 3-8 rows) takes projections of at most this many outputs, where
// cuBLASLt's tiles underfill the GPU. cuda_gemv_bench on the H200, GLM-4-9B shapes, against
// cuBLASLt at 4 and 8 rows: o and down (4,096 outputs) 1.20-1.22x and 1.07-1.09x, qkv (4,608)
// 1.01-1.04x, gate_up (27,392) 0.88-0.90x, lm_head 0.92-0.95x.
inline constexpr int64_t kMmaGemvMaxOutputs = 8192;

class CudaBackend final : public Backend {
 public:
  CudaBackend(const LoadedModel& model, const CudaBackendOptions& options);
  ~CudaBackend() override;

  void forward(const ForwardBatch& batch, std::span<float> logits) override;
  // Samples on the device: only the RowSamples come back (one D2H copy per step).
  // submit_sample() then collect_sample().
  void forward_sample(const ForwardBatch& batch, const SampleBatch& sampling,
                      std::span<RowSample> out) override;
  // cuda_steps.cpp: a queued step only enqueues work (uploads, kernels or a graph, the samples'
  // download) between two events on the stream; previous_sample_token() ids are read from the
  // device's sample buffer by the embedding kernel. collect_sample() waits on the step's event.
  void submit_sample(const ForwardBatch& batch, const SampleBatch& sampling) override;
  void collect_sample(std::span<RowSample> out) override;
  // From the events: the previous collected step's end to the last collected step's start.
  std::optional<double> last_idle_gap() const override { return idle_gap_; }
  KvPoolShape kv_pool() const override { return pool_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }
  size_t decode_graph_count() const { return graphs_.size(); }  // captured so far

 private:
  // The host side of one queued step: pinned upload buffers (the host may fill the next step's
  // while the device still copies this one's), where its samples arrive, and the events around it.
  struct StepSlot {
    PinnedBuffer ints;             // the step's packed upload (DeviceBatch::packed_ints)
    RowSample* samples = nullptr;  // this slot's rows of host_samples_
    Event start{true}, end{true};
    size_t rows = 0;     // samples it brings back
    bool timed = false;  // collected whole: its events may be timed against the next step's
  };
  // Enough for kMaxStepsInFlight queued steps and the last collected one, whose end event the
  // idle gap of the next collected step is timed from.
  static constexpr size_t kSlots = kMaxStepsInFlight + 1;
  // The slot the next submitted step fills; its index also goes up with the step's batch arrays
  // (HostSamples::slot).
  int32_t current_slot_index() const { return static_cast<int32_t>(submitted_ % kSlots); }
  StepSlot& current_slot() { return slots_[current_slot_index()]; }
  // Too many logit adjustments for the device buffer: forward() and sampling on the host.
  void sample_on_host(const ForwardBatch& batch, const SampleBatch& sampling, int32_t previous_rows,
                      StepSlot& slot);

  // Device-side view of a step's batch arrays and sampling parameters, packed into the slot's
  // pinned `ints` and sent to buf_.ints in one H2D copy (upload_packed): each copy on the stream
  // sits between one step's last kernel and the next one's first.
  struct DeviceBatch {
    AttentionBatch attention;
    const int32_t* token_ids = nullptr;
    const int32_t* positions = nullptr;
    const int32_t* logits_rows = nullptr;
    const int32_t* sample_slot = nullptr;              // the step's slot index (HostSamples::slot)
    const RowSamplingParams* sample_params = nullptr;  // pack_sampling's
    const LogitAdjustment* adjustments = nullptr;
    bool logits_rows_in_order = false;  // logits row r is token row r, for every token
    size_t packed_ints = 0;             // int32 words packed so far
  };
  DeviceBatch pack_batch_arrays(const ForwardBatch& batch);
  // Packs `rows` rows of sampling parameters (the batch's, then greedy padding rows) and the
  // adjustments after db's batch arrays.
  void pack_sampling(const SampleBatch& sampling, int32_t rows, DeviceBatch& db);
  void upload_packed(const DeviceBatch& db);
  std::vector<UploadJob> layout_weights(const LoadedModel& model, DeviceArena& arena);
  void layout_workspace(DeviceArena& arena);
  size_t ints_capacity() const;
  size_t kv_element_bytes() const;  // 1 for an FP8 pool
  size_t kv_bytes_per_block() const;
  void allocate_within_budget(const LoadedModel& model);
  void upload_rope_table();
  // previous_rows: how many of the previous step's samples its token ids may name.
  void check_batch(const ForwardBatch& batch, int32_t previous_rows = 0) const;
  // Runs `step` with the device selected; after a failure, drains the stream (queued work may
  // still read the pinned buffers) and rethrows.
  template <typename Step>
  void guarded(const Step& step);
  DeviceBatch run_layers(const ForwardBatch& batch);  // checks, uploads, encode_layers
  // Enqueues every layer over the uploaded batch (no host sync: graph-capturable).
  void encode_layers(const DeviceBatch& db);
  // Whether the last layer's residual norm applies the final norm too, into buf_.final_rows:
  // when the logits rows are the token rows in order and fit in one logits pass (decode steps),
  // one launch fewer a step.
  bool final_norm_in_last_layer(const DeviceBatch& db) const;
  // CUDA-graph decode (cuda_decode.cpp): the padded row count a pure decode step runs at under
  // a graph, or 0 when the step must run eagerly.
  int32_t graph_rows(const ForwardBatch& batch) const;
  void decode_with_graph(const ForwardBatch& batch, const SampleBatch& sampling, int32_t rows);
  // The batch arrays of a decode step padded to `rows` sequences, at the fixed layout a graph
  // of (rows, context) reads: the block table with the context bucket's row stride.
  DeviceBatch pack_decode_arrays(const ForwardBatch& batch, int32_t rows, int32_t context);
  // Each returns its sublayer's output for the residual_add_norm after it.
  Delta attention_layer(const DeviceBatch& db, int layer);
  Delta mlp_layer(int32_t n_tokens, int layer);
  // A projection whose output only feeds a residual_add_norm: with K in kKSplitParts fp32 parts
  // (Gemm::linear_k_split) for up to kKSplitMaxRows rows the GEMV does not take, without bias;
  // else project().
  Delta project_delta(const void* x, const void* w, const float* w_scale, const void* bias,
                      int64_t m, int64_t k);
  // Whether project() runs an m x n x k projection on the GEMV (gemv.h): up to kGemvRows rows,
  // or the tensor-core form (mma_gemv_); else cuBLASLt.
  bool gemv_takes(int64_t m, int64_t n, int64_t k, const void* x, const void* w) const;
  // y = x W^T (+ bias): with w_scale (an FP8 matrix) the FP8 GEMV at up to kGemvFp8MaxRows rows,
  // else x quantized per row into buf_.x8 (unless x is buf_.h and the norm that wrote it left its
  // FP8 rows there already: norm_fp8_rows) and the FP8 tensor-core GEMV or cuBLASLt's FP8
  // matmul; else the GEMV kernel where gemv_takes, else cuBLASLt.
  void project(const void* x, const void* w, const float* w_scale, const void* bias, void* y,
               int64_t m, int64_t n, int64_t k, ActType type, bool out_f32, cudaStream_t stream);
  // Where a residual norm over n rows leaves the FP8 rows of its output for the next projection:
  // buf_.x8 for an FP8-weight model's steps of more than kGemvFp8MaxRows rows, else nowhere.
  Fp8Rows norm_fp8_rows(int32_t n) const;
  // The final norm and lm_head for logits rows [r0, r0 + rows) into buf_.logits.
  void logits_pass(const DeviceBatch& db, int64_t r0, int32_t rows);
  void copy_logits(const DeviceBatch& db, int64_t n_out, std::span<float> logits);
  // Final norm, lm_head and the sampler over `rows` rows (graph-capturable).
  void encode_sampling(const DeviceBatch& db, int64_t rows);

  ModelConfig config_;
  CudaBackendOptions options_;
  int device_;  // selected (cudaSetDevice) before any member below touches CUDA
  ActType act_;
  DType act_dtype_;
  int64_t max_context_ = 0;
  int32_t max_blocks_per_seq_ = 0;
  int32_t max_logits_rows_ = 0;
  bool optimised_attention_ = false;  // attention.h kernels; else the plain fallback
  QkvLayout qkv_layout_;  // the model's q/k/v split and RoPE, for the kernels that apply it
  // Steps of up to kGemvRows tokens run the QKV GEMV with RoPE and the KV write in its epilogue
  // (when the model allows: fused_qkv_rope_), and the gate_up GEMV with SwiGLU in its (gemv.h);
  // AUTOGLM_CUDA_FUSE=0 turns both off to measure them.
  bool fused_decode_ = true;
  bool fused_fp8_swiglu_ = false;  // FP8 gate_up + SwiGLU in one GEMV at 1-2 rows
  bool fused_qkv_rope_ = true;
  bool k_split_ = true;  // project_delta's parts; AUTOGLM_CUDA_KSPLIT=0 turns them off
  // Projections of kGemvMmaMinRows..kGemvMaxRows rows and at most kMmaGemvMaxOutputs outputs on
  // the tensor-core GEMV (gemv.h) instead of cuBLASLt; AUTOGLM_CUDA_GEMV_MMA=0 turns that off.
  bool mma_gemv_ = true;
  // FP8 weights: the residual norms write the FP8 rows of the qkv and gate_up inputs
  // (norm_fp8_rows); AUTOGLM_CUDA_FP8_NORM_ROWS=0 quantizes them separately, to measure it.
  bool fp8_norm_rows_ = true;
  // A step's embedding gather inside its first norm (embedding_norm), and the final norm inside
  // the last layer's (final_norm_in_last_layer); AUTOGLM_CUDA_EMBED_NORM=0 and
  // AUTOGLM_CUDA_FINAL_NORM_FUSED=0 launch them separately, to measure them.
  bool embedding_norm_ = true;
  bool final_norm_fused_ = true;
  KvPoolShape pool_;

  Stream stream_;
  DeviceArena weights_, workspace_;
  DeviceBuffer kv_memory_;
  PinnedBuffer host_logits_;
  // [kSlots][max_batched_tokens] samples: the sampler writes a step's rows straight into its
  // slot's (sampling.h, HostSamples) unless mapped_samples_ is off, when a copy brings them back.
  PinnedBuffer host_samples_;
  bool mapped_samples_ = false;
  StepSlot slots_[kSlots];
  uint64_t submitted_ = 0, collected_ = 0;  // steps; slot of step i: slots_[i % kSlots]
  int32_t device_sample_rows_ = 0;          // rows of buf_.samples the last submitted step wrote
  std::optional<double> idle_gap_;
  std::unique_ptr<Gemm> gemm_;

  void* embed_ = nullptr;
  void* lm_head_ = nullptr;
  float* final_norm_ = nullptr;
  std::vector<DeviceLayer> layers_;
  std::vector<PagedKvLayer> kv_;
  StepBuffers buf_;
  DecodeGraphs graphs_;  // destroyed before the buffers its graphs point into
};

template <typename Step>
void CudaBackend::guarded(const Step& step) {
  // The engine thread may not be the one that built the backend: select the device here too.
  AUTOGLM_CUDA_CHECK(cudaSetDevice(device_));
  try {
    step();
  } catch (...) {
    // Work queued before the failure may still read the pinned batch buffer; let it drain so
    // that the next step can rewrite it. (After a device fault this returns the same error.)
    cudaStreamSynchronize(stream_.get());
    throw;
  }
}

}  // namespace autoglm::cuda
