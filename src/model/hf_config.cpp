// See hf_config.h. Limits below are sanity caps far above any released model; they exist so
// that hostile configs cannot make later size arithmetic overflow.
#include "model/hf_config.h"

#include <cmath>

#include "core/error.h"
#include "model/printable.h"

namespace autoglm {
namespace {

constexpr int64_t kMaxHidden = int64_t{1} << 18;
constexpr int64_t kMaxIntermediate = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxPositions = int64_t{1} << 24;
constexpr int64_t kMaxTokenId = (int64_t{1} << 31) - 1;

std::string json_type(const Json& v) {
  return v.type_name();
}

}  // namespace

ConfigReader::ConfigReader(const Json& object, std::string source)
    : object_(&object), source_(std::move(source)) {}

void ConfigReader::fail_field(std::string_view key, const std::string& what) const {
  fail(ErrorCode::kInvalidModel, source_ + ": field '" + std::string(key) + "': " + what);
}

const Json* ConfigReader::find(std::string_view key) const {
  auto it = object_->find(std::string(key));
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> ConfigReader::optional_int(std::string_view key, int64_t min,
                                                  int64_t max) const {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      fail_field(key, std::to_string(u) + " is above the maximum " + std::to_string(max));
    }
    const auto s = static_cast<int64_t>(u);
    if (s < min)
      fail_field(key, std::to_string(s) + " is below the minimum " + std::to_string(min));
    return s;
  }
  if (!v->is_number_integer()) fail_field(key, "expected an integer, got " + json_type(*v));
  const int64_t s = v->get<int64_t>();
  if (s < min || s > max) {
    fail_field(key, std::to_string(s) + " is outside [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
  }
  return s;
}

int64_t ConfigReader::require_int(std::string_view key, int64_t min, int64_t max) const {
  auto v = optional_int(key, min, max);
  if (!v) fail_field(key, "required integer is missing");
  return *v;
}

double ConfigReader::number_or(std::string_view key, double fallback, double min,
                               double max) const {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) fail_field(key, "expected a number, got " + json_type(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) {
    fail_field(key, std::to_string(d) + " is outside [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
  }
  return d;
}

bool ConfigReader::bool_or(std::string_view key, bool fallback) const {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail_field(key, "expected true or false, got " + json_type(*v));
  return v->get<bool>();
}

std::optional<std::string> ConfigReader::optional_string(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) fail_field(key, "expected a string, got " + json_type(*v));
  return v->get<std::string>();
}

std::vector<int64_t> ConfigReader::token_ids(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return {};
  if (v->is_number()) return {require_int(key, 0, kMaxTokenId)};
  if (!v->is_array())
    fail_field(key, "expected a token id or a list of them, got " + json_type(*v));
  std::vector<int64_t> ids;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const bool ok = e.is_number_unsigned() || (e.is_number_integer() && e.get<int64_t>() >= 0);
    if (!ok || (e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(kMaxTokenId))) {
      fail_field(key, "element " + std::to_string(i) + " is not a token id (" + e.dump() + ")");
    }
    ids.push_back(e.get<int64_t>());
  }
  return ids;
}

std::optional<ConfigReader> ConfigReader::sub_object(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) fail_field(key, "expected an object, got " + json_type(*v));
  return ConfigReader(*v, source_ + ": " + std::string(key));
}

Json parse_config_object(std::string_view text, const std::string& source) {
  Json j = parse_json_limited(text, source, /*max_depth=*/32);
  if (!j.is_object()) fail(ErrorCode::kInvalidModel, source + ": expected a JSON object");
  return j;
}

void require_silu_activation(const ConfigReader& config) {
  const auto act = config.optional_string("hidden_act");
  if (act && *act != "silu" && *act != "swish") {
    fail(ErrorCode::kUnsupported, config.source() + ": field 'hidden_act': '" + printable(*act) +
                                      "' is not supported (only silu)");
  }
}

namespace {

std::optional<DType> parse_torch_dtype(const ConfigReader& config) {
  // transformers 5 writes "dtype"; older versions wrote "torch_dtype".
  const char* key = config.find("dtype") != nullptr ? "dtype" : "torch_dtype";
  const auto name = config.optional_string(key);
  if (!name) return std::nullopt;
  if (*name == "float32") return DType::kF32;
  if (*name == "float16") return DType::kF16;
  if (*name == "bfloat16") return DType::kBF16;
  fail(ErrorCode::kUnsupported, config.source() + ": field '" + key + "': '" + printable(*name) +
                                    "' is not supported (float32, float16, bfloat16)");
}

double require_number(const ConfigReader& c, std::string_view key, double min, double max) {
  if (c.find(key) == nullptr) c.fail_field(key, "required number is missing");
  return c.number_or(key, 0.0, min, max);
}

// RoPE settings live in "rope_parameters" (transformers 5) or "rope_scaling" (older), with
// rope_theta / partial_rotary_factor either inside that object or at the top level; the
// object's values win, as in transformers' standardize_rope_params.
void parse_rope(const ConfigReader& config, const CommonDefaults& defaults, ModelConfig& out) {
  std::optional<ConfigReader> rope = config.sub_object("rope_parameters");
  if (!rope) rope = config.sub_object("rope_scaling");
  const ConfigReader& top = config;
  const auto pick = [&](const char* key) -> const ConfigReader& {
    return rope && rope->find(key) != nullptr ? *rope : top;
  };
  out.rope_theta = pick("rope_theta").number_or("rope_theta", 10000.0, 1.0, 1e12);
  out.partial_rotary_factor =
      pick("partial_rotary_factor")
          .number_or("partial_rotary_factor", defaults.partial_rotary_factor, 1e-6, 1.0);
  if (!rope) return;
  std::string type = rope->optional_string("rope_type").value_or("");
  if (type.empty()) type = rope->optional_string("type").value_or("default");
  RopeScaling& s = out.rope_scaling;
  if (type == "default") {
    s.type = RopeScalingType::kNone;
  } else if (type == "linear") {
    s.type = RopeScalingType::kLinear;
    s.factor = require_number(*rope, "factor", 1.0, 1e6);
  } else if (type == "llama3") {
    // transformers requires all four llama3 fields; so do we.
    s.type = RopeScalingType::kLlama3;
    s.factor = require_number(*rope, "factor", 1.0, 1e6);
    s.low_freq_factor = require_number(*rope, "low_freq_factor", 1e-6, 1e6);
    s.high_freq_factor = require_number(*rope, "high_freq_factor", 1e-6, 1e6);
    if (!(s.high_freq_factor > s.low_freq_factor)) {
      rope->fail_field("high_freq_factor", "must be greater than low_freq_factor");
    }
    s.original_max_position_embeddings =
        rope->require_int("original_max_position_embeddings", 1, kMaxPositions);
  } else {
    fail(ErrorCode::kUnsupported, rope->source() + ": rope type '" + printable(type) +
                                      "' is not supported (default, linear, llama3)");
  }
}

void parse_sizes(const ConfigReader& c, const CommonDefaults& d, ModelConfig& m) {
  m.hidden_size = c.require_int("hidden_size", 1, kMaxHidden);
  m.intermediate_size = c.require_int("intermediate_size", 1, kMaxIntermediate);
  m.num_hidden_layers = c.require_int("num_hidden_layers", 1, kMaxLayers);
  m.num_attention_heads = c.require_int("num_attention_heads", 1, kMaxHeads);
  m.num_key_value_heads =
      c.optional_int("num_key_value_heads", 1, kMaxHeads).value_or(m.num_attention_heads);
  m.vocab_size = c.require_int("vocab_size", 1, kMaxVocab);
  m.max_position_embeddings = c.require_int("max_position_embeddings", 1, kMaxPositions);
  m.rms_norm_eps = c.number_or("rms_norm_eps", d.rms_norm_eps, 1e-12, 0.5);
  if (m.num_attention_heads % m.num_key_value_heads != 0) {
    c.fail_field("num_key_value_heads", std::to_string(m.num_key_value_heads) +
                                            " does not divide num_attention_heads " +
                                            std::to_string(m.num_attention_heads));
  }
  const int64_t head_dim = c.optional_int("head_dim", 1, kMaxHeadDim).value_or(d.head_dim);
  if (head_dim != 0) {
    m.head_dim = head_dim;
  } else {
    if (m.hidden_size % m.num_attention_heads != 0) {
      c.fail_field("num_attention_heads", std::to_string(m.num_attention_heads) +
                                              " does not divide hidden_size " +
                                              std::to_string(m.hidden_size));
    }
    m.head_dim = m.hidden_size / m.num_attention_heads;
  }
}

}  // namespace

void refuse_sliding_window(const ConfigReader& config) {
  if (config.bool_or("use_sliding_window", false)) {
    fail(ErrorCode::kUnsupported,
         config.source() +
             ": field 'use_sliding_window': sliding-window attention is not supported");
  }
}

ModelConfig parse_common_config(const ConfigReader& c, const CommonDefaults& d) {
  ModelConfig m;
  parse_sizes(c, d, m);
  parse_rope(c, d, m);
  // transformers truncates: dim = int(head_dim * partial_rotary_factor).
  m.rotary_dim = static_cast<int64_t>(static_cast<double>(m.head_dim) * m.partial_rotary_factor);
  if (m.rotary_dim < 2 || m.rotary_dim % 2 != 0) {
    c.fail_field("partial_rotary_factor", "rotary dimension " + std::to_string(m.rotary_dim) +
                                              " (head_dim " + std::to_string(m.head_dim) +
                                              " x factor) must be even and at least 2");
  }
  m.tie_word_embeddings = c.bool_or("tie_word_embeddings", false);
  m.torch_dtype = parse_torch_dtype(c);
  m.bos_token_id = c.optional_int("bos_token_id", 0, kMaxTokenId);
  m.pad_token_id = c.optional_int("pad_token_id", 0, kMaxTokenId);
  m.eos_token_ids = c.token_ids("eos_token_id");
  return m;
}

void merge_generation_config(std::string_view text, const std::string& source,
                             ModelConfig& config) {
  const Json j = parse_config_object(text, source);
  const ConfigReader reader(j, source);
  for (int64_t id : reader.token_ids("eos_token_id")) {
    bool seen = false;
    for (int64_t have : config.eos_token_ids) seen = seen || have == id;
    if (!seen) config.eos_token_ids.push_back(id);
  }
}

}  // namespace autoglm
