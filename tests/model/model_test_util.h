// Test helpers for the model layer: a temp directory, a safetensors serializer that can also
// write lying headers, and a valid synthetic one-layer Llama model directory that tests
// mutate into each malformed case. Thread ownership: test thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_util.h"

namespace autoglm::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// 8-byte little-endian length + header text + data.
std::string safetensors_bytes(const std::string& header, const std::string& data);

// Builds a valid safetensors file tensor by tensor; header() can be edited before build().
class SafetensorsBuilder {
 public:
  // Appends a tensor with deterministic bytes; dtype_bytes is the element size to use.
  SafetensorsBuilder& add(const std::string& name, const std::string& dtype,
                          std::vector<int64_t> shape, size_t dtype_bytes = 4);
  Json& header() { return header_; }
  std::string& data() { return data_; }
  std::string build() const { return safetensors_bytes(header_.dump(), data_); }

 private:
  Json header_ = Json::object();
  std::string data_;
};

// config.json of the synthetic model: LlamaForCausalLM, 1 layer, hidden 8, 2 heads, 1 kv head,
// intermediate 16, vocab 16, F32.
Json tiny_llama_config();

// The tensors of that model (names and shapes written out here, independently of the loader).
SafetensorsBuilder tiny_llama_weights();

// Writes config.json, generation_config.json and model.safetensors into `dir`.
void write_tiny_llama(const std::string& dir);

}  // namespace autoglm::test
