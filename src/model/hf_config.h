// Typed, range-checked reading of Hugging Face config.json / generation_config.json fields,
// and the fields every decoder-only architecture shares. Architecture files (arch/*.cpp) call
// these and then set what is specific to them. Every error names the source file and field.
// Thread ownership: none (pure functions over immutable JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_util.h"
#include "model/model_config.h"

namespace autoglm {

// Size caps for the small JSON files of a model directory (read with read_file_capped).
inline constexpr size_t kMaxConfigBytes = 4u << 20;
inline constexpr size_t kMaxGenerationConfigBytes = 1u << 20;

// Reads fields of one JSON object. A field that is absent or JSON null counts as absent.
class ConfigReader {
 public:
  ConfigReader(const Json& object, std::string source);

  const Json* find(std::string_view key) const;
  int64_t require_int(std::string_view key, int64_t min, int64_t max) const;
  std::optional<int64_t> optional_int(std::string_view key, int64_t min, int64_t max) const;
  double number_or(std::string_view key, double fallback, double min, double max) const;
  bool bool_or(std::string_view key, bool fallback) const;
  std::optional<std::string> optional_string(std::string_view key) const;
  // A token id field that may be an int or a list of ints (eos_token_id).
  std::vector<int64_t> token_ids(std::string_view key) const;

  // Reads a sub-object (e.g. rope_scaling); nullopt when absent/null, error if not an object.
  std::optional<ConfigReader> sub_object(std::string_view key) const;
  const std::string& source() const { return source_; }
  [[noreturn]] void fail_field(std::string_view key, const std::string& what) const;

 private:
  const Json* object_;
  std::string source_;
};

// Parses config.json text into an object, checking it is a JSON object.
Json parse_config_object(std::string_view text, const std::string& source);

// Defaults an architecture supplies for fields its HF config class defaults.
struct CommonDefaults {
  double partial_rotary_factor = 1.0;  // GLM: 0.5
  double rms_norm_eps = 1e-6;
  // head_dim when config.json omits it; 0 means hidden_size / num_attention_heads.
  int64_t head_dim = 0;
};

// Reads sizes, heads, head_dim, eps, RoPE (theta, partial factor, scaling), positions, tie,
// dtype and special token ids; checks the relations between them (GQA divisibility, even
// rotary_dim, ...). The caller then sets rope_style, biases, norms and MLP layout.
ModelConfig parse_common_config(const ConfigReader& config, const CommonDefaults& defaults);

// Refuses sliding-window attention (Qwen2/Qwen3 use_sliding_window), which the backends lack.
void refuse_sliding_window(const ConfigReader& config);

// Refuses configs whose hidden_act is not SiLU (the only activation the backends implement).
void require_silu_activation(const ConfigReader& config);

// Merges generation_config.json's eos_token_id (int or list) into config.eos_token_ids, keeping
// order and dropping duplicates.
void merge_generation_config(std::string_view text, const std::string& source, ModelConfig& config);

}  // namespace autoglm
