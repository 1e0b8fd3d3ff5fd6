// The CPU backend: the batched transformer forward in fp32 over F32/F16/BF16 weights, with a
// paged KV pool allocated once. It implements the same Backend interface the CUDA backend will,
// so the scheduler and its tests run without a GPU. Every architecture difference comes from
// ModelConfig flags; nothing here branches on an architecture name.
// Thread ownership: constructed on the loading thread, then driven by the engine thread only.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/rope.h"
#include "model/model_dir.h"

namespace autoglm {

class CpuBackend final : public Backend {
 public:
  // `model` must outlive the backend (its weights are mmapped views).
  CpuBackend(const LoadedModel& model, KvPoolShape kv_pool);

  void forward(const ForwardBatch& batch, std::span<float> logits) override;
  KvPoolShape kv_pool() const override { return pool_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }

 private:
  // Weights of one layer as kernel arguments; norm vectors converted to fp32 once at load.
  struct LayerPlan {
    std::vector<float> input_norm, post_self_attn_norm, post_attention_norm, post_mlp_norm;
    std::vector<float> q_norm, k_norm;
    cpu::WeightMatrix q, q_bias, k, k_bias, v, v_bias, o, o_bias;
    cpu::WeightMatrix gate_up, gate, gate_bias, up, up_bias, down, down_bias;
  };
  void check_batch(const ForwardBatch& batch) const;
  void attention_layer(const ForwardBatch& batch, const LayerPlan& layer, int layer_index);
  void mlp_layer(int64_t n_tokens, const LayerPlan& layer);
  void attend(const ForwardBatch& batch, int layer_index, const float* q, float* out);
  float* k_cache(int layer, int32_t slot);
  float* v_cache(int layer, int32_t slot);

  const ModelConfig& config_;
  KvPoolShape pool_;
  RopeTable rope_;
  cpu::WeightMatrix embed_, lm_head_;
  std::vector<float> final_norm_;
  std::vector<LayerPlan> layers_;
  std::vector<float> kv_;  // [layer][K|V][num_blocks * block_size][kv_heads * head_dim]

  // Activations, resized per step (capacity grows to the largest batch, then stays).
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, scratch_, scores_;
};

}  // namespace autoglm
