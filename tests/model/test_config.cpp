// Unit tests for config.json parsing through the architecture table: per-architecture facts,
// RoPE variants, EOS merging, and rejection of missing/invalid fields.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/arch/registry.h"
#include "model/hf_config.h"
#include "model_test_util.h"

namespace autoglm {
namespace {

ModelConfig parse(const Json& j) {
  return parse_model_config(j.dump(), "config.json");
}

std::string parse_error(const Json& j) {
  try {
    parse(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Json with_arch(const char* arch) {
  Json j = test::tiny_llama_config();
  j["architectures"] = {arch};
  return j;
}

TEST(Config, LlamaDefaults) {
  const ModelConfig c = parse(test::tiny_llama_config());
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.rotary_dim, 4);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeoX);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.fused_gate_up);
  EXPECT_EQ(c.norms_per_layer, 2);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_FALSE(c.pad_token_id.has_value());
}

TEST(Config, Glm4FactsAndPartialRotaryDefault) {
  Json j = with_arch("Glm4ForCausalLM");
  j["head_dim"] = 8;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.norms_per_layer, 4);
  EXPECT_TRUE(c.fused_gate_up);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_DOUBLE_EQ(c.partial_rotary_factor, 0.5);
  EXPECT_EQ(c.rotary_dim, 4);
}

TEST(Config, GlmHeadDimDefaultsTo128LikeTransformers) {
  const ModelConfig c = parse(with_arch("GlmForCausalLM"));
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rotary_dim, 64);
  EXPECT_EQ(c.norms_per_layer, 2);
}

TEST(Config, Qwen2AndQwen3) {
  const ModelConfig q2 = parse(with_arch("Qwen2ForCausalLM"));
  EXPECT_TRUE(q2.qkv_bias);
  EXPECT_FALSE(q2.o_bias);
  EXPECT_FALSE(q2.qk_norm);
  Json j = with_arch("Qwen3ForCausalLM");
  j["head_dim"] = 16;
  const ModelConfig q3 = parse(j);
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_FALSE(q3.qkv_bias);
  EXPECT_EQ(q3.head_dim, 16);
  j["use_sliding_window"] = true;
  EXPECT_NE(parse_error(j).find("use_sliding_window"), std::string::npos);
}

TEST(Config, RopeParametersObjectWinsOverTopLevel) {
  Json j = with_arch("Glm4ForCausalLM");
  j["head_dim"] = 8;
  j["partial_rotary_factor"] = 1.0;
  j["rope_parameters"] = {
      {"rope_type", "default"}, {"rope_theta", 500.0}, {"partial_rotary_factor", 0.25}};
  const ModelConfig c = parse(j);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500.0);
  EXPECT_EQ(c.rotary_dim, 2);
}

TEST(Config, Llama3RopeScaling) {
  Json j = test::tiny_llama_config();
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  j["rope_scaling"].erase("low_freq_factor");
  EXPECT_NE(parse_error(j).find("config.json: rope_scaling: field 'low_freq_factor': required"),
            std::string::npos);
  j["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_NE(parse_error(j).find("rope type 'yarn' is not supported"), std::string::npos);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::kLinear);
}

TEST(Config, UnknownArchitectureListsSupported) {
  const std::string msg = parse_error(with_arch("MistralForCausalLM"));
  EXPECT_NE(msg.find("config.json: field 'architectures': 'MistralForCausalLM'"),
            std::string::npos);
  for (const ArchSpec* a : supported_architectures()) {
    EXPECT_NE(msg.find(std::string(a->name)), std::string::npos) << msg;
  }
}

TEST(Config, RejectsMissingAndInvalidFields) {
  struct Case {
    const char* field;
    Json value;  // null: erase the field
    const char* expect;
  };
  const Case cases[] = {
      {"hidden_size", Json(), "field 'hidden_size': required integer is missing"},
      {"hidden_size", -8, "field 'hidden_size'"},
      {"hidden_size", 0, "field 'hidden_size'"},
      {"hidden_size", "8", "expected an integer"},
      {"hidden_size", 8.5, "expected an integer"},
      {"num_hidden_layers", uint64_t{1} << 63, "above the maximum"},
      {"num_attention_heads", 3, "does not divide hidden_size"},
      {"num_key_value_heads", 3, "does not divide num_attention_heads"},
      {"vocab_size", int64_t{1} << 40, "field 'vocab_size'"},
      {"rms_norm_eps", -1.0, "field 'rms_norm_eps'"},
      {"rope_theta", "big", "field 'rope_theta'"},
      {"tie_word_embeddings", 1, "expected true or false"},
      {"eos_token_id", Json::array({1, -2}), "field 'eos_token_id'"},
      {"eos_token_id", "2", "field 'eos_token_id'"},
      {"hidden_act", "gelu", "'gelu' is not supported"},
      {"torch_dtype", "int4", "'int4' is not supported"},
      {"architectures", Json::array(), "field 'architectures'"},
      {"architectures", "LlamaForCausalLM", "field 'architectures'"},
      {"rope_scaling", 3, "field 'rope_scaling': expected an object"},
      {"head_dim", 3, "rotary dimension 3"},
  };
  for (const Case& c : cases) {
    Json j = test::tiny_llama_config();
    if (c.value.is_null()) {
      j.erase(c.field);
    } else {
      j[c.field] = c.value;
    }
    const std::string msg = parse_error(j);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.field << " -> " << msg;
    EXPECT_EQ(msg.rfind("config.json", 0), 0u) << msg;
  }
}

TEST(Config, RejectsNonObjectAndMalformedJson) {
  EXPECT_THROW(parse_model_config("[1]", "config.json"), Error);
  EXPECT_THROW(parse_model_config("{\"a\":", "config.json"), Error);
  EXPECT_THROW(parse_model_config(std::string(1000, '['), "config.json"), Error);
}

TEST(Config, MergesGenerationConfigEos) {
  ModelConfig c = parse(test::tiny_llama_config());
  merge_generation_config(R"({"eos_token_id": [3, 2, 4]})", "generation_config.json", c);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 3, 4}));
  merge_generation_config(R"({"eos_token_id": 7})", "generation_config.json", c);
  EXPECT_EQ(c.eos_token_ids.back(), 7);
  EXPECT_THROW(merge_generation_config(R"({"eos_token_id": [true]})", "g.json", c), Error);
}

}  // namespace
}  // namespace autoglm
