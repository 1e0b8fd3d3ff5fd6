// Qwen3ForCausalLM (dense). From transformers' modeling_qwen3.py: per-head RMSNorm on q and k
// (weights [head_dim], applied after the projections and before RoPE), q/k/v/o biases only when
// attention_bias (default false), explicit head_dim (default 128), NeoX RoPE, lm_head possibly
// tied. Sliding-window attention is refused. Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {
namespace {

ModelConfig parse_qwen3(const ConfigReader& config) {
  require_silu_activation(config);
  refuse_sliding_window(config);
  CommonDefaults defaults;
  defaults.rms_norm_eps = 1e-6;
  defaults.head_dim = 128;
  ModelConfig m = parse_common_config(config, defaults);
  m.rope_style = RopeStyle::kNeoX;
  m.qkv_bias = config.bool_or("attention_bias", false);
  m.o_bias = m.qkv_bias;
  m.mlp_bias = false;
  m.qk_norm = true;
  m.norms_per_layer = 2;
  m.fused_gate_up = false;
  return m;
}

}  // namespace

const ArchSpec& qwen3_arch() {
  static const ArchSpec spec{"Qwen3ForCausalLM", "Qwen3 dense (q/k norm, NeoX RoPE)", &parse_qwen3,
                             &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
