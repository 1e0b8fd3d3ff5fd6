// See model_test_util.h.
#include "model_test_util.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace autoglm::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/autoglm-model-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

SafetensorsBuilder& SafetensorsBuilder::add(const std::string& name, const std::string& dtype,
                                            std::vector<int64_t> shape, size_t dtype_bytes) {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  const size_t begin = data_.size();
  for (size_t i = 0; i < count * dtype_bytes; ++i) {
    data_.push_back(static_cast<char>((i * 7 + begin) & 0x3f));  // small finite floats
  }
  header_[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, data_.size()}}};
  return *this;
}

Json tiny_llama_config() {
  return Json{{"architectures", {"LlamaForCausalLM"}},
              {"hidden_size", 8},
              {"intermediate_size", 16},
              {"num_hidden_layers", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"vocab_size", 16},
              {"max_position_embeddings", 64},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"hidden_act", "silu"},
              {"torch_dtype", "float32"},
              {"tie_word_embeddings", false},
              {"bos_token_id", 1},
              {"eos_token_id", 2}};
}

SafetensorsBuilder tiny_llama_weights() {
  SafetensorsBuilder b;
  const std::string l = "model.layers.0.";
  b.add("model.embed_tokens.weight", "F32", {16, 8});
  b.add(l + "input_layernorm.weight", "F32", {8});
  b.add(l + "self_attn.q_proj.weight", "F32", {8, 8});
  b.add(l + "self_attn.k_proj.weight", "F32", {4, 8});
  b.add(l + "self_attn.v_proj.weight", "F32", {4, 8});
  b.add(l + "self_attn.o_proj.weight", "F32", {8, 8});
  b.add(l + "post_attention_layernorm.weight", "F32", {8});
  b.add(l + "mlp.gate_proj.weight", "F32", {16, 8});
  b.add(l + "mlp.up_proj.weight", "F32", {16, 8});
  b.add(l + "mlp.down_proj.weight", "F32", {8, 16});
  b.add("model.norm.weight", "F32", {8});
  b.add("lm_head.weight", "F32", {16, 8});
  return b;
}

void write_tiny_llama(const std::string& dir) {
  write_file(dir + "/config.json", tiny_llama_config().dump(2));
  write_file(dir + "/generation_config.json", R"({"eos_token_id": [2, 3], "bos_token_id": 1})");
  write_file(dir + "/model.safetensors", tiny_llama_weights().build());
}

}  // namespace autoglm::test
