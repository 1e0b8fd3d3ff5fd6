// The CUDA backend against the CPU backend (itself checked against transformers) on small
// random models written by the test with head_dim 64 and 128, the sizes the optimised paged
// attention (attention.h) serves, which the tiny fixtures (head_dim 16/32) never reach: a GLM-4
// layout (partial interleaved RoPE, 4 norms, fused gate_up, qkv bias) and a Qwen3 layout (NeoX,
// q/k norm, separate gate/up). Long prompts prefilled in two chunks (the second over cached
// blocks), then decode steps of three sequences of different lengths in one batch (split-KV
// decode). Skipped, with a message, when no GPU is present.
// Thread ownership: the test (or program) main thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend_test_util.h"
#include "cuda_test_util.h"

namespace autoglm {
namespace {

namespace fs = std::filesystem;
using autoglm::test::SeqStep;

struct Arch {
  std::string name;
  int64_t head_dim;
  bool glm4;                 // else Qwen3
  bool kv_fp8 = false;       // the CUDA backend's KV cache in FP8 E4M3 (the CPU's stays fp32)
  bool weights_fp8 = false;  // the CUDA backend's projections W8A8 in FP8 E4M3 (the CPU's BF16)
};

struct TensorOut {
  std::string name;
  std::vector<int64_t> shape;
  float scale, offset;  // values offset + uniform(-scale, scale)
};

uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);  // round to even
}

// Writes config.json and model.safetensors (BF16) for a 2-layer model of `arch`.
void write_model(const fs::path& dir, const Arch& arch) {
  const int64_t hidden = 256, inter = 512, vocab = 512, heads = 4, kv_heads = 2, layers = 2;
  const int64_t hd = arch.head_dim, q = heads * hd, kv = kv_heads * hd;
  fs::create_directories(dir);
  std::ofstream(dir / "config.json")
      << "{\"architectures\": [\"" << (arch.glm4 ? "Glm4ForCausalLM" : "Qwen3ForCausalLM")
      << "\"], \"model_type\": \"" << (arch.glm4 ? "glm4" : "qwen3")
      << "\", \"attention_bias\": " << (arch.glm4 ? "true" : "false") << ", \"head_dim\": " << hd
      << ", \"hidden_size\": " << hidden << ", \"intermediate_size\": " << inter
      << ", \"max_position_embeddings\": 4096, \"num_attention_heads\": " << heads
      << ", \"num_hidden_layers\": " << layers << ", \"num_key_value_heads\": " << kv_heads
      << (arch.glm4 ? ", \"partial_rotary_factor\": 0.5" : "")
      << ", \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, "
         "\"torch_dtype\": \"bfloat16\", \"vocab_size\": "
      << vocab << "}\n";
  std::vector<TensorOut> ts = {{"model.embed_tokens.weight", {vocab, hidden}, 1.0f, 0.0f},
                               {"model.norm.weight", {hidden}, 0.2f, 1.0f},
                               {"lm_head.weight", {vocab, hidden}, 0.1f, 0.0f}};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const float w = 0.08f;
    ts.push_back({p + "input_layernorm.weight", {hidden}, 0.2f, 1.0f});
    ts.push_back({p + "post_attention_layernorm.weight", {hidden}, 0.2f, 1.0f});
    ts.push_back({p + "self_attn.q_proj.weight", {q, hidden}, w, 0.0f});
    ts.push_back({p + "self_attn.k_proj.weight", {kv, hidden}, w, 0.0f});
    ts.push_back({p + "self_attn.v_proj.weight", {kv, hidden}, w, 0.0f});
    ts.push_back({p + "self_attn.o_proj.weight", {hidden, q}, w, 0.0f});
    ts.push_back({p + "mlp.down_proj.weight", {hidden, inter}, w, 0.0f});
    if (arch.glm4) {
      ts.push_back({p + "post_self_attn_layernorm.weight", {hidden}, 0.2f, 1.0f});
      ts.push_back({p + "post_mlp_layernorm.weight", {hidden}, 0.2f, 1.0f});
      for (const char* b : {"q", "k", "v"}) {
        ts.push_back({p + "self_attn." + b + "_proj.bias", {b[0] == 'q' ? q : kv}, 0.5f, 0.0f});
      }
      ts.push_back({p + "mlp.gate_up_proj.weight", {2 * inter, hidden}, w, 0.0f});
    } else {
      ts.push_back({p + "self_attn.q_norm.weight", {hd}, 0.2f, 1.0f});
      ts.push_back({p + "self_attn.k_norm.weight", {hd}, 0.2f, 1.0f});
      ts.push_back({p + "mlp.gate_proj.weight", {inter, hidden}, w, 0.0f});
      ts.push_back({p + "mlp.up_proj.weight", {inter, hidden}, w, 0.0f});
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::string header = "{";
  std::vector<uint16_t> data;
  for (const TensorOut& t : ts) {
    int64_t n = 1;
    std::string dims;
    for (int64_t d : t.shape) {
      n *= d;
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    // Appended piece by piece: gcc 12's -Wrestrict misfires on long operator+ chains.
    if (header.size() > 1) header += ", ";
    header += '"';
    header += t.name;
    header += "\": {\"dtype\": \"BF16\", \"shape\": [";
    header += dims;
    header += "], \"data_offsets\": [";
    header += std::to_string(data.size() * 2);
    header += ", ";
    header += std::to_string((data.size() + n) * 2);
    header += "]}";
    for (int64_t i = 0; i < n; ++i) data.push_back(to_bf16(t.offset + t.scale * u(rng)));
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream f(dir / "model.safetensors", std::ios::binary);
  const uint64_t len = header.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(data.data()),
          static_cast<std::streamsize>(data.size() * 2));
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

constexpr double kTolerance = 3e-2;  // max |gpu - cpu| / max |cpu| per row, BF16
// With an FP8 KV cache: E4M3 keeps 3 mantissa bits (K and V each rounded by up to 2^-4
// relative); the bound is the measured worst (docs/PERFORMANCE.md, "FP8 KV cache") with room.
constexpr double kFp8Tolerance = 0.1;
// With FP8 weights every projection's weights and inputs are rounded to 3 mantissa bits (each
// row scaled to its largest magnitude); the bound is the measured worst (docs/PERFORMANCE.md,
// "FP8 weights") with room.
constexpr double kFp8WeightsTolerance = 0.2;

// top-1 minus top-2, relative to the row's largest magnitude.
double top2_margin(const float* row, int32_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  float scale = 0;
  for (int32_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(row[i]));
  return (v[0] - v[1]) / std::max(scale, 1e-30f);
}

class CudaVsCpu : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override { AUTOGLM_SKIP_WITHOUT_GPU(); }
};

TEST_P(CudaVsCpu, ChunkedPrefillAndBatchedDecodeMatchTheCpuBackend) {
  const Arch arch = GetParam();
  const fs::path dir = fs::temp_directory_path() /
                       ("autoglm-cuda-vs-cpu-" + arch.name + "-" + std::to_string(::getpid()));
  write_model(dir, arch);
  const auto model = load_model_directory(dir.string());
  fs::remove_all(dir);  // the weights stay mapped
  constexpr int32_t kBlock = 16, kPool = 192;
  CpuBackend cpu(*model, KvPoolShape{kPool, kBlock});
  CudaBackendOptions o;
  o.block_size = kBlock;
  o.num_kv_blocks = kPool;
  o.max_context_len = 2048;
  o.max_batched_tokens = 512;
  o.kv_cache_fp8 = arch.kv_fp8;
  o.weights_fp8 = arch.weights_fp8;
  auto gpu = make_cuda_backend(*model, o);
  const double tolerance = arch.weights_fp8 ? kFp8WeightsTolerance
                           : arch.kv_fp8    ? kFp8Tolerance
                                            : kTolerance;
  double worst = 0;
  const int32_t vocab = gpu->vocab_size();
  std::mt19937 rng(11);
  // Three sequences; lengths straddle block boundaries and reach past the split-KV threshold.
  std::vector<SeqStep> seqs;
  int32_t next_block = 0;
  for (const int32_t len : {700, 257, 33}) {
    std::vector<int32_t> ids(len);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
    seqs.push_back({ids, 0, autoglm::test::scattered_blocks(len + 8, kBlock, next_block, kPool)});
    next_block += static_cast<int32_t>(seqs.back().blocks.size());
  }
  const auto compare = [&](const std::vector<SeqStep>& step, const std::string& what) {
    const auto want = autoglm::test::run_step(cpu, step);
    const auto got = autoglm::test::run_step(*gpu, step);
    ASSERT_TRUE(all_finite(got)) << what;
    ASSERT_EQ(got.size(), want.size());
    for (size_t r = 0; r < got.size() / vocab; ++r) {
      const float* g = got.data() + r * vocab;
      const float* w = want.data() + r * vocab;
      const double diff = autoglm::test::max_rel_diff(g, w, vocab);
      worst = std::max(worst, diff);
      EXPECT_LT(diff, tolerance) << what << " row " << r;
      if (diff >= tolerance) {
        // Which side is unstable: the step is idempotent (the same token rewrites the same KV
        // slot), so a rerun of each side should reproduce its first result exactly.
        const auto want2 = autoglm::test::run_step(cpu, step);
        const auto got2 = autoglm::test::run_step(*gpu, step);
        std::printf(
            "[vs-cpu] %s row %zu rerun: gpu vs its first %.4g, cpu vs its first %.4g, "
            "gpu vs cpu %.4g\n",
            what.c_str(), r, autoglm::test::max_rel_diff(got2.data() + r * vocab, g, vocab),
            autoglm::test::max_rel_diff(want2.data() + r * vocab, w, vocab),
            autoglm::test::max_rel_diff(got2.data() + r * vocab, want2.data() + r * vocab, vocab));
      }
      // The argmax may differ only where the CPU's top two are within twice the tolerance.
      if (autoglm::test::argmax(g, vocab) != autoglm::test::argmax(w, vocab)) {
        EXPECT_LT(top2_margin(w, vocab), 2 * tolerance) << what << " row " << r;
      }
    }
  };
  // Prefill each sequence in two chunks: the second attends over the first's cached blocks.
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto& ids = seqs[s].ids;
    const size_t half = ids.size() / 2;
    compare({{{ids.begin(), ids.begin() + half}, 0, seqs[s].blocks}},
            "chunk 1 of " + std::to_string(s));
    compare({{{ids.begin() + half, ids.end()}, static_cast<int32_t>(half), seqs[s].blocks}},
            "chunk 2 of " + std::to_string(s));
  }
  // Batched decode, fed the same tokens on both sides.
  for (auto& s : seqs) {
    s.first_pos = static_cast<int32_t>(s.ids.size());
    s.ids = {static_cast<int32_t>(rng() % vocab)};
  }
  // The same decode steps sampled on the device (a CUDA graph per step shape): greedy picks the
  // CPU's argmax up to near-ties.
  const auto compare_sampled = [&](const std::vector<SeqStep>& step, const std::string& what) {
    const ForwardBatchArrays batch = autoglm::test::make_batch(*gpu, step);
    std::vector<RowSamplingParams> params(batch.logits_rows.size());
    std::vector<RowSample> got(params.size());
    gpu->forward_sample(batch.view(), SampleBatch{params, {}}, got);
    const auto want = autoglm::test::run_step(cpu, step);
    for (size_t r = 0; r < got.size(); ++r) {
      const float* w = want.data() + r * vocab;
      EXPECT_EQ(got[r].flags, 0) << what << " row " << r;
      if (got[r].token != autoglm::test::argmax(w, vocab)) {
        EXPECT_LT(top2_margin(w, vocab), 2 * tolerance) << what << " sampled row " << r;
      }
    }
  };
  for (int step = 0; step < 8; ++step) {
    compare_sampled(seqs, "sampled decode step " + std::to_string(step));
    compare(seqs, "decode step " + std::to_string(step));
    for (auto& s : seqs) {
      ++s.first_pos;
      s.ids = {static_cast<int32_t>(rng() % vocab)};
    }
  }
  // One sequence alone: one-row steps take the GEMV kernels (and their FP8-weight form).
  std::vector<SeqStep> one = {seqs[0]};
  for (int step = 0; step < 3; ++step) {
    compare_sampled(one, "one-row sampled decode step " + std::to_string(step));
    compare(one, "one-row decode step " + std::to_string(step));
    ++one[0].first_pos;
    one[0].ids = {static_cast<int32_t>(rng() % vocab)};
  }
  const auto* cuda = dynamic_cast<const cuda::CudaBackend*>(gpu.get());
  ASSERT_NE(cuda, nullptr);
  EXPECT_GE(cuda->decode_graph_count(), 1u) << "the sampled decode steps ran without a graph";
  std::printf("[vs-cpu] %s worst row max_rel_diff %.4g (tolerance %.3g)\n", arch.name.c_str(),
              worst, tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaVsCpu,
                         ::testing::Values(Arch{"glm4_hd64", 64, true},
                                           Arch{"glm4_hd128", 128, true},
                                           Arch{"qwen3_hd64", 64, false},
                                           Arch{"qwen3_hd128", 128, false},
                                           Arch{"glm4_hd64_fp8_kv", 64, true, true},
                                           Arch{"glm4_hd128_fp8_kv", 128, true, true},
                                           Arch{"qwen3_hd128_fp8_kv", 128, false, true},
                                           Arch{"glm4_hd128_fp8_weights", 128, true, false, true},
                                           Arch{"glm4_hd64_fp8_both", 64, true, true, true},
                                           Arch{"qwen3_hd64_fp8_weights", 64, false, false, true}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace autoglm
