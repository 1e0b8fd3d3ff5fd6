// Plain-data description of a decoder-only model, parsed from a Hugging Face config.json by the
// architecture table (arch/registry.h). The CPU and CUDA backends read only this struct (and
// ModelWeights): every per-architecture difference they need is a field here, not a branch on
// the architecture name. Thread ownership: immutable after load; readable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace autoglm {

// How rotary pairs are formed inside the rotated part of a head.
enum class RopeStyle {
  kNeoX,         // rotate_half: pairs (i, i + rotary_dim/2) (Llama, Qwen2, Qwen3)
  kInterleaved,  // pairs (2i, 2i+1) (GLM, GLM-4-0414)
};

enum class RopeScalingType {
  kNone,    // plain inv_freq = theta^(-2i/rotary_dim)
  kLinear,  // positions divided by factor
  kLlama3,  // Llama 3.x frequency-dependent smoothing
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;                  // llama3 only
  double high_freq_factor = 4.0;                 // llama3 only
  int64_t original_max_position_embeddings = 0;  // llama3 only
};

struct ModelConfig {
  std::string architecture;  // config.architectures[0], e.g. "Glm4ForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA: num_attention_heads is a multiple of this
  int64_t head_dim = 0;             // explicit in config, or hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  double rms_norm_eps = 1e-6;

  // Rotary embedding: only the first rotary_dim elements of each head rotate; the rest pass.
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;
  int64_t rotary_dim = 0;  // int(head_dim * partial_rotary_factor), even
  RopeStyle rope_style = RopeStyle::kNeoX;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;

  // Layer structure.
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens
  bool qkv_bias = false;             // q_proj/k_proj/v_proj have a bias
  bool o_bias = false;               // o_proj has a bias (Llama/Qwen3 attention_bias)
  bool mlp_bias = false;             // gate/up/down have biases (Llama mlp_bias)
  bool qk_norm = false;              // per-head RMSNorm on q and k before RoPE (Qwen3)
  int norms_per_layer = 2;           // 2, or 4 for GLM-4-0414 (post-attn and post-mlp norms)
  bool fused_gate_up = false;        // one gate_up_proj [2*inter, hidden]: gate rows first

  std::optional<DType> torch_dtype;  // config's "torch_dtype"/"dtype" when it names one
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> eos_token_ids;  // config's, merged with generation_config.json's
};

}  // namespace autoglm
