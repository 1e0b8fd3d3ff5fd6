// Glm4ForCausalLM (GLM-4-0414, e.g. THUDM/GLM-4-9B-0414). Differences from Llama, taken from
// transformers' modeling_glm4.py: four RMSNorms per layer (input, post_self_attn after the
// attention output, post_attention before the MLP, post_mlp after the MLP), a fused
// gate_up_proj whose first half is the gate, bias on q/k/v only (attention_bias, default true),
// and partial interleaved RoPE: rotary_dim = head_dim * partial_rotary_factor (default 0.5),
// pairs (2i, 2i+1). Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {
namespace {

ModelConfig parse_glm4(const ConfigReader& config) {
  require_silu_activation(config);
  CommonDefaults defaults;
  defaults.partial_rotary_factor = 0.5;
  defaults.rms_norm_eps = 1.5625e-07;
  defaults.head_dim = 128;
  ModelConfig m = parse_common_config(config, defaults);
  m.rope_style = RopeStyle::kInterleaved;
  m.qkv_bias = config.bool_or("attention_bias", true);
  m.o_bias = false;
  m.mlp_bias = false;
  m.qk_norm = false;
  m.norms_per_layer = 4;
  m.fused_gate_up = true;
  return m;
}

}  // namespace

const ArchSpec& glm4_arch() {
  static const ArchSpec spec{"Glm4ForCausalLM",
                             "GLM-4-0414 (4 norms/layer, partial interleaved RoPE)", &parse_glm4,
                             &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
