// See weights.h. The standard layout below is the one all supported HF architectures share;
// which optional tensors exist is decided by ModelConfig flags that the architecture set.
#include "model/weights.h"

#include <set>

#include "core/error.h"
#include "model/safetensors.h"

namespace autoglm {
namespace {

void add_layer(std::vector<TensorSpec>& out, int layer, LayerTensor role, const char* suffix,
               std::vector<int64_t> shape) {
  out.push_back({"model.layers." + std::to_string(layer) + "." + suffix, std::move(shape), layer,
                 static_cast<uint8_t>(role)});
}

void add_attention(std::vector<TensorSpec>& out, int i, const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  add_layer(out, i, LayerTensor::kQ, "self_attn.q_proj.weight", {q, h});
  add_layer(out, i, LayerTensor::kK, "self_attn.k_proj.weight", {kv, h});
  add_layer(out, i, LayerTensor::kV, "self_attn.v_proj.weight", {kv, h});
  add_layer(out, i, LayerTensor::kO, "self_attn.o_proj.weight", {h, q});
  if (c.qkv_bias) {
    add_layer(out, i, LayerTensor::kQBias, "self_attn.q_proj.bias", {q});
    add_layer(out, i, LayerTensor::kKBias, "self_attn.k_proj.bias", {kv});
    add_layer(out, i, LayerTensor::kVBias, "self_attn.v_proj.bias", {kv});
  }
  if (c.o_bias) add_layer(out, i, LayerTensor::kOBias, "self_attn.o_proj.bias", {h});
  if (c.qk_norm) {
    add_layer(out, i, LayerTensor::kQNorm, "self_attn.q_norm.weight", {c.head_dim});
    add_layer(out, i, LayerTensor::kKNorm, "self_attn.k_norm.weight", {c.head_dim});
  }
}

void add_mlp(std::vector<TensorSpec>& out, int i, const ModelConfig& c) {
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  if (c.fused_gate_up) {
    add_layer(out, i, LayerTensor::kGateUp, "mlp.gate_up_proj.weight", {2 * f, h});
  } else {
    add_layer(out, i, LayerTensor::kGate, "mlp.gate_proj.weight", {f, h});
    add_layer(out, i, LayerTensor::kUp, "mlp.up_proj.weight", {f, h});
  }
  add_layer(out, i, LayerTensor::kDown, "mlp.down_proj.weight", {h, f});
  if (c.mlp_bias) {
    add_layer(out, i, LayerTensor::kGateBias, "mlp.gate_proj.bias", {f});
    add_layer(out, i, LayerTensor::kUpBias, "mlp.up_proj.bias", {f});
    add_layer(out, i, LayerTensor::kDownBias, "mlp.down_proj.bias", {h});
  }
}

void add_global(std::vector<TensorSpec>& out, GlobalTensor role, const char* name,
                std::vector<int64_t> shape) {
  out.push_back({name, std::move(shape), -1, static_cast<uint8_t>(role)});
}

}  // namespace

uint64_t TensorView::element_count() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // validated when the file was parsed
  return n;
}

std::vector<TensorSpec> standard_decoder_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  add_global(out, GlobalTensor::kEmbedTokens, "model.embed_tokens.weight",
             {c.vocab_size, c.hidden_size});
  for (int i = 0; i < static_cast<int>(c.num_hidden_layers); ++i) {
    add_layer(out, i, LayerTensor::kInputNorm, "input_layernorm.weight", {c.hidden_size});
    add_layer(out, i, LayerTensor::kPostAttentionNorm, "post_attention_layernorm.weight",
              {c.hidden_size});
    if (c.norms_per_layer == 4) {
      add_layer(out, i, LayerTensor::kPostSelfAttnNorm, "post_self_attn_layernorm.weight",
                {c.hidden_size});
      add_layer(out, i, LayerTensor::kPostMlpNorm, "post_mlp_layernorm.weight", {c.hidden_size});
    }
    add_attention(out, i, c);
    add_mlp(out, i, c);
  }
  add_global(out, GlobalTensor::kFinalNorm, "model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) {
    add_global(out, GlobalTensor::kLmHead, "lm_head.weight", {c.vocab_size, c.hidden_size});
  }
  return out;
}

ModelWeights bind_weights(const ModelConfig& config, const std::vector<TensorSpec>& specs,
                          const std::function<const TensorSource*(const std::string&)>& lookup,
                          const std::vector<std::string>& all_names, const std::string& where) {
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  std::set<std::string> used;
  for (const TensorSpec& spec : specs) {
    const TensorSource* src = lookup(spec.name);
    if (src == nullptr) {
      fail(ErrorCode::kInvalidModel, where + ": tensor '" + spec.name +
                                         "': missing (expected shape " + format_shape(spec.shape) +
                                         ")");
    }
    if (*src->shape != spec.shape) {
      fail(ErrorCode::kInvalidModel, *src->file + ": tensor '" + spec.name + "': shape " +
                                         format_shape(*src->shape) + ", expected " +
                                         format_shape(spec.shape));
    }
    TensorView v{src->dtype, spec.shape, src->data, src->file, spec.name};
    w.parameter_count += v.element_count();
    w.weight_bytes += v.byte_size();
    used.insert(spec.name);
    if (spec.layer >= 0) {
      w.layers[static_cast<size_t>(spec.layer)].tensors[spec.role] = std::move(v);
    } else if (spec.role == static_cast<uint8_t>(GlobalTensor::kEmbedTokens)) {
      w.embed_tokens = std::move(v);
    } else if (spec.role == static_cast<uint8_t>(GlobalTensor::kFinalNorm)) {
      w.final_norm = std::move(v);
    } else {
      w.lm_head = std::move(v);
    }
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  for (const std::string& name : all_names) {
    if (!used.count(name)) w.unused_tensors.push_back(name);
  }
  return w;
}

}  // namespace autoglm
