// The CPU backend: the batched transformer forward in fp32 over F32/F16/BF16 weights, with a
// paged KV pool allocated once. It implements the same Backend interface the CUDA backend will,
// so the scheduler and its tests run without a GPU. Every architecture difference comes from
// ModelConfig flags; nothing here branches on an architecture name. Linear layers and
// attention run on the run-time-selected SIMD kernels (simd_kernels.h) across a thread pool
// owned by the backend; activations and scratch are reused, so a step allocates nothing once
// the largest batch has been seen.
// Thread ownership: constructed on the loading thread, then driven by the engine thread only;
// the pool's workers run only inside forward().
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_kernels.h"
#include "backend/cpu/thread_pool.h"
#include "backend/rope.h"
#include "model/model_dir.h"

namespace autoglm {

struct CpuBackendOptions {
  int threads = 0;  // <= 0: std::thread::hardware_concurrency()
  // nullptr: cpu::best_kernels(). Tests pin a table to check every ISA end to end.
  const cpu::SimdKernels* kernels = nullptr;
};

class CpuBackend final : public Backend {
 public:
  // `model` must outlive the backend (its weights are mmapped views).
  CpuBackend(const LoadedModel& model, KvPoolShape kv_pool, CpuBackendOptions options = {});

  void forward(const ForwardBatch& batch, std::span<float> logits) override;
  KvPoolShape kv_pool() const override { return pool_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }
  int threads() const { return pool_threads_.size(); }
  std::string_view isa() const { return kernels_.isa; }

 private:
  // Weights of one layer as kernel arguments; norm vectors converted to fp32 once at load.
  struct LayerPlan {
    std::vector<float> input_norm, post_self_attn_norm, post_attention_norm, post_mlp_norm;
    std::vector<float> q_norm, k_norm;
    std::vector<float> q_bias, k_bias, v_bias, o_bias, gate_bias, up_bias, down_bias;
    cpu::WeightMatrix q, k, v, o, gate_up, gate, up, down;
  };
  // One linear layer's job: y[n, w.rows] = x[n, w.cols] * w^T + bias.
  struct LinearJob {
    const cpu::WeightMatrix* w;
    const std::vector<float>* bias;
    float* y;
  };
  // Runs jobs that share the input x as ONE parallel region over their concatenated rows
  // (q/k/v: one wake-up of the pool instead of three).
  void linear(const float* x, int64_t n_tokens, std::span<const LinearJob> jobs);
  void linear(const float* x, int64_t n_tokens, const cpu::WeightMatrix& w,
              const std::vector<float>& bias, float* y) {
    const LinearJob job{&w, &bias, y};
    linear(x, n_tokens, std::span<const LinearJob>(&job, 1));
  }
  // Query heads [head, head + heads) of one token, which share one KV head (cpu::AttendArgs).
  void attend(const ForwardBatch& batch, int layer, int32_t seq, int32_t token, int64_t head,
              int64_t heads, const float* q, float* out, float* scores);
  void rotate_and_store(const ForwardBatch& batch, int layer);
  void check_batch(const ForwardBatch& batch) const;
  void attention_layer(const ForwardBatch& batch, const LayerPlan& layer, int layer_index);
  void mlp_layer(int64_t n_tokens, const LayerPlan& layer);
  float* k_cache(int layer, int32_t slot);
  float* v_cache(int layer, int32_t slot);

  const ModelConfig& config_;
  KvPoolShape pool_;
  const cpu::SimdKernels& kernels_;
  cpu::ThreadPool pool_threads_;
  RopeTable rope_;
  cpu::WeightMatrix embed_, lm_head_;
  std::vector<float> final_norm_;
  std::vector<LayerPlan> layers_;
  std::vector<float> kv_;  // [layer][K|V][num_blocks * block_size][kv_heads * head_dim]

  // Activations, resized per step (capacity grows to the largest batch, then stays).
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, final_row_;
  std::vector<float> rope_cos_, rope_sin_;        // [n_tokens][rotary_dim / 2] for this step
  std::vector<int32_t> token_seq_;                // [n_tokens] sequence index of each token
  std::vector<std::vector<float>> gemm_scratch_;  // per thread: kGemmRowBlock * max cols
  std::vector<std::vector<float>> scores_;        // per thread: attention scores
};

}  // namespace autoglm
