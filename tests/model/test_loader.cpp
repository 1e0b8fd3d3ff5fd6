// Unit tests for loading whole model directories: the synthetic tiny Llama and its broken
// variants (missing/wrong-shaped tensors, shards, pickle, ties), plus every real fixture under
// tests/fixtures/models/ when present.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "model/model_dir.h"
#include "model_test_util.h"

namespace autoglm {
namespace {

using test::TempDir;
using test::write_file;

std::string load_error(const std::string& dir) {
  try {
    load_model_directory(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Loader, LoadsTinyLlama) {
  TempDir dir;
  test::write_tiny_llama(dir.path());
  const auto m = load_model_directory(dir.path());
  EXPECT_EQ(m->config.architecture, "LlamaForCausalLM");
  EXPECT_EQ(m->config.eos_token_ids, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(m->weights.layers.size(), 1u);
  const LayerWeights& l = m->weights.layers[0];
  EXPECT_TRUE(l[LayerTensor::kQ].present());
  EXPECT_EQ(l[LayerTensor::kK].shape, (std::vector<int64_t>{4, 8}));
  EXPECT_FALSE(l[LayerTensor::kQBias].present());
  EXPECT_FALSE(l[LayerTensor::kGateUp].present());
  EXPECT_EQ(*l[LayerTensor::kDown].file, dir.file("model.safetensors"));
  EXPECT_EQ(m->weights.parameter_count, 128u + 8 + 64 + 32 + 32 + 64 + 8 + 128 * 3 + 8 + 128);
  EXPECT_EQ(m->weights.weight_bytes, m->weights.parameter_count * 4);
  EXPECT_EQ(m->kv_bytes_per_token(), 2u * 1 * 1 * 4 * 4);
  EXPECT_TRUE(m->weights.unused_tensors.empty());
  EXPECT_EQ(m->dtype_counts().at(DType::kF32), 12u);
  // Views point at the bytes the file holds for that tensor.
  const std::string bytes = test::read_file(dir.file("model.safetensors"));
  const auto* p = static_cast<const char*>(m->weights.final_norm.data);
  EXPECT_EQ(std::string(p, 32), bytes.substr(bytes.size() - 32 - 16 * 8 * 4, 32));
}

TEST(Loader, TiedEmbeddingsAndExtraTensors) {
  TempDir dir;
  test::write_tiny_llama(dir.path());
  Json cfg = test::tiny_llama_config();
  cfg["tie_word_embeddings"] = true;
  write_file(dir.file("config.json"), cfg.dump());
  auto w = test::tiny_llama_weights();
  w.add("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {2});
  write_file(dir.file("model.safetensors"), w.build());
  const auto m = load_model_directory(dir.path());
  EXPECT_EQ(m->weights.lm_head.data, m->weights.embed_tokens.data);
  EXPECT_EQ(m->weights.unused_tensors.size(), 2u);  // lm_head.weight (tied) and inv_freq
}

TEST(Loader, MissingTensorNamesItAndTheFile) {
  TempDir dir;
  test::write_tiny_llama(dir.path());
  auto w = test::tiny_llama_weights();
  // Drop the last tensor (lm_head) so the data section stays contiguous.
  w.header().erase("lm_head.weight");
  w.data().resize(w.data().size() - 16 * 8 * 4);
  write_file(dir.file("model.safetensors"), w.build());
  EXPECT_EQ(load_error(dir.path()), dir.file("model.safetensors") +
                                        ": tensor 'lm_head.weight': missing (expected shape "
                                        "[16, 8])");
}

TEST(Loader, WrongShapeNamesExpectedAndActual) {
  TempDir dir;
  test::write_tiny_llama(dir.path());
  auto w = test::tiny_llama_weights();
  w.header()["model.layers.0.self_attn.k_proj.weight"]["shape"] = {8, 4};
  write_file(dir.file("model.safetensors"), w.build());
  EXPECT_EQ(load_error(dir.path()),
            dir.file("model.safetensors") +
                ": tensor 'model.layers.0.self_attn.k_proj.weight': shape [8, 4], expected [4, 8]");
}

void write_two_shards(const TempDir& dir, const std::string& second_name) {
  test::SafetensorsBuilder a, b;
  a.add("model.embed_tokens.weight", "F32", {16, 8});
  b.add("model.norm.weight", "F32", {8});
  write_file(dir.file("a.safetensors"), a.build());
  write_file(dir.file("b.safetensors"), b.build());
  Json index = {
      {"metadata", {{"total_size", 544}}},
      {"weight_map",
       {{"model.embed_tokens.weight", "a.safetensors"}, {"model.norm.weight", second_name}}}};
  write_file(dir.file("model.safetensors.index.json"), index.dump());
  write_file(dir.file("config.json"), test::tiny_llama_config().dump());
}

TEST(Loader, ShardedIndexIsCheckedBothWays) {
  TempDir dir;
  write_two_shards(dir, "b.safetensors");
  // The shards match the index; the failure is the first layer tensor missing.
  EXPECT_NE(load_error(dir.path())
                .find("model.safetensors.index.json: tensor "
                      "'model.layers.0.input_layernorm.weight': missing"),
            std::string::npos);
  write_two_shards(dir, "a.safetensors");
  const std::string msg = load_error(dir.path());
  EXPECT_NE(msg.find("index.json: tensor 'model.norm.weight': not found in"), std::string::npos)
      << msg;
}

TEST(Loader, ShardNotListedInIndexIsRejected) {
  TempDir dir;
  write_two_shards(dir, "b.safetensors");
  test::SafetensorsBuilder b;
  b.add("model.norm.weight", "F32", {8});
  b.add("sneaky", "F32", {1});
  write_file(dir.file("b.safetensors"), b.build());
  EXPECT_NE(load_error(dir.path()).find("b.safetensors: tensor 'sneaky': not listed in"),
            std::string::npos);
}

TEST(Loader, ShardNamesMustStayInsideTheDirectory) {
  for (const char* bad : {"../a.safetensors", "/etc/passwd", "sub/a.safetensors", "..", ""}) {
    TempDir dir;
    write_two_shards(dir, bad);
    const std::string msg = load_error(dir.path());
    EXPECT_NE(msg.find("model.safetensors.index.json: shard file name"), std::string::npos)
        << bad << " -> " << msg;
  }
  EXPECT_THROW(check_shard_name("a/../../b", "i.json"), Error);
  EXPECT_NO_THROW(check_shard_name("model-00001-of-00002.safetensors", "i.json"));
}

TEST(Loader, PickleOnlyDirectoryIsRefused) {
  TempDir dir;
  write_file(dir.file("config.json"), test::tiny_llama_config().dump());
  write_file(dir.file("pytorch_model.bin"), "PK\x03\x04 not really");
  const std::string msg = load_error(dir.path());
  EXPECT_NE(msg.find("pytorch_model.bin: pickle checkpoints are refused"), std::string::npos);
  EXPECT_NE(msg.find("execute code"), std::string::npos);
}

TEST(Loader, MissingPiecesAreNotFound) {
  TempDir dir;
  EXPECT_NE(load_error(dir.path()).find("config.json"), std::string::npos);
  write_file(dir.file("config.json"), test::tiny_llama_config().dump());
  EXPECT_NE(load_error(dir.path()).find("no model.safetensors"), std::string::npos);
  EXPECT_NE(load_error(dir.file("nope")).find("not a directory"), std::string::npos);
}

TEST(Loader, BadGenerationConfigIsNamed) {
  TempDir dir;
  test::write_tiny_llama(dir.path());
  write_file(dir.file("generation_config.json"), R"({"eos_token_id": "x"})");
  EXPECT_NE(load_error(dir.path()).find("generation_config.json: field 'eos_token_id'"),
            std::string::npos);
}

// Real tiny models made by transformers (tests/fixtures/models/<name>/), when present.
TEST(Loader, LoadsEveryFixtureModel) {
  const std::filesystem::path root = std::string(AUTOGLM_FIXTURES_DIR) + "/models";
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) GTEST_SKIP() << "no fixtures at " << root;
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!entry.is_directory() || !std::filesystem::exists(entry.path() / "config.json")) continue;
    SCOPED_TRACE(entry.path().string());
    const auto m = load_model_directory(entry.path().string());
    EXPECT_GT(m->weights.parameter_count, 0u);
    EXPECT_EQ(m->weights.layers.size(), static_cast<size_t>(m->config.num_hidden_layers));
    EXPECT_TRUE(m->weights.lm_head.present());
    ++loaded;
  }
  if (loaded == 0) GTEST_SKIP() << "no model directories under " << root;
}

}  // namespace
}  // namespace autoglm
