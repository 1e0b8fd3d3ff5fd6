// Loading a Hugging Face model directory: config.json (+ generation_config.json), the weights
// (model.safetensors, or shards listed by model.safetensors.index.json), and the paths of the
// tokenizer files (the tokenizer itself is loaded by src/tokenizer). Pickle checkpoints are
// refused. Thread ownership: a LoadedModel is built on the loading thread, then immutable; the
// engine thread owns it and backends read its weight views.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace autoglm {

inline constexpr size_t kMaxIndexBytes = 64u << 20;

// Paths of tokenizer files that exist in the directory (empty string: absent).
struct TokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  std::string chat_template_jinja;  // transformers >= 4.43 may save the template separately
};

struct LoadedModel {
  std::string directory;
  std::string config_path;
  std::string generation_config_path;  // empty when absent
  std::string index_path;              // empty when the weights are one model.safetensors
  TokenizerFiles tokenizer;
  ModelConfig config;
  // Owned by pointer so that views (data and file-name pointers) stay put.
  std::vector<std::unique_ptr<SafetensorsFile>> weight_files;
  ModelWeights weights;

  // The dtype activations/KV use: config's torch_dtype, else embed_tokens' dtype.
  DType model_dtype() const;
  // K and V for one token across all layers, in model_dtype().
  uint64_t kv_bytes_per_token() const;
  // Number of tensors per dtype over every tensor in the weight files.
  std::map<DType, size_t> dtype_counts() const;
};

// Loads and validates everything; throws autoglm::Error naming the file (and tensor/field).
std::unique_ptr<LoadedModel> load_model_directory(const std::string& directory);

// Checks a shard file name from an index: a plain file name inside the directory.
void check_shard_name(const std::string& name, const std::string& index_path);

}  // namespace autoglm
