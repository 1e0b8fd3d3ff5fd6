// The CUDA backend end to end on every fixture model (tests/fixtures/models/*-tiny and
// models/autoglm-tiny), each in BF16 and in FP16, with criteria relative to transformers' own
// low-precision error (lowp_error.json, scripts/lowp_reference.py): logits vs the fp32 truth,
// teacher-forced greedy vs transformers' fp32 greedy (near-ties reported, not failed), a ragged
// batch of 8 decoding like each sequence alone, and a model that does not fit failing with the
// numbers. Skipped, with a message, when no GPU is present. Owned by gpuval.
// Thread ownership: the test (or program) main thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/row_sampler.h"
#include "backend_test_util.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "cuda_test_util.h"
#include "fixture_models_test.h"
#include "model/safetensors.h"

namespace autoglm {
namespace {

using autoglm::test::SeqStep;

constexpr int32_t kBlockSize = 16;
constexpr int32_t kPoolBlocks = 256;

CudaBackendOptions test_options() {
  CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.num_kv_blocks = kPoolBlocks;
  o.max_num_seqs = 16;
  o.max_batched_tokens = 256;
  o.max_logits_rows = 16;  // prompts longer than this take several lm_head passes
  o.max_context_len = 1024;
  return o;
}

// ---- The criteria, relative to transformers' own low-precision error -----------------------
// scripts/lowp_reference.py measures, per fixture and dtype, how far transformers itself run
// in BF16/FP16 lands from its committed fp32 truth (lowp_error.json). We must do as well, up
// to kFactor, and never need better than a floor of a few roundings of the dtype.
constexpr double kFactor = 1.5;
const std::vector<DType> kDtypes = {DType::kBF16, DType::kF16};

const char* hf_dtype_name(DType t) {
  return t == DType::kF16 ? "float16" : "bfloat16";
}

// Logits floor on max_rel_diff: 4 unit roundoffs (2^-9 BF16, 2^-12 FP16).
double logits_floor(DType t) {
  return t == DType::kF16 ? 4.0 / 4096 : 4.0 / 512;
}

// Tie floor on an fp32 top-2 margin: 2 ulp of a logit of magnitude 1 (2^-7 BF16, 2^-10 FP16).
double tie_floor(DType t) {
  return t == DType::kF16 ? 2.0 / 1024 : 2.0 / 128;
}

// transformers' own error in one dtype on one fixture (lowp_error.json "dtypes"/<dtype>).
struct LowpReference {
  double worst_max_rel_diff = 0;               // over every prompt position
  std::map<std::string, double> max_rel_diff;  // per prompt
  int teacher_forced_flips = 0;                // argmax != fp32 greedy, teacher-forced
  int teacher_forced_total = 0;
  double largest_flip_margin = 0;  // fp32 top-2 margin of its widest flip
  std::map<std::string, std::vector<double>> greedy_margins;  // reference.json, fp32
};

Json read_json(const std::filesystem::path& path) {
  return parse_json_limited(read_file_capped(path.string(), 64u << 20), path.string());
}

LowpReference load_lowp_reference(const std::filesystem::path& dir, DType dtype) {
  const auto path = dir / "lowp_error.json";
  if (!std::filesystem::exists(path)) {
    fail(ErrorCode::kNotFound, path.string() + " missing: run scripts/lowp_reference.py");
  }
  const Json file = read_json(path);
  const Json& d = file.at("dtypes").at(hf_dtype_name(dtype));
  LowpReference r;
  r.worst_max_rel_diff = d.at("worst_max_rel_diff").get<double>();
  r.teacher_forced_total = d.at("teacher_forced_total").get<int>();
  r.teacher_forced_flips = r.teacher_forced_total - d.at("teacher_forced_agree").get<int>();
  for (const auto& [name, p] : d.at("prompts").items()) {
    r.max_rel_diff[name] = p.at("max_rel_diff").get<double>();
    for (const Json& f : p.at("teacher_forced_flips")) {
      r.largest_flip_margin = std::max(r.largest_flip_margin, f.at("fp32_margin").get<double>());
    }
  }
  const Json reference = read_json(dir / "reference.json");  // outlives the loop (C++20 range-for)
  for (const Json& p : reference.at("prompts")) {
    r.greedy_margins[p.at("name").get<std::string>()] =
        p.at("greedy_margins").get<std::vector<double>>();
  }
  return r;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

// top-1 minus top-2 logit, relative to the row's largest magnitude.
double top2_margin(const float* row, int32_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  float scale = 0;
  for (int32_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(row[i]));
  return (v[0] - v[1]) / std::max(scale, 1e-30f);
}

// Worst row of max_rel_diff(a, b) over a [rows, vocab] pair.
double worst_row_rel_diff(const float* a, const float* b, size_t rows, int32_t vocab) {
  double worst = 0;
  for (size_t t = 0; t < rows; ++t) {
    const size_t off = t * vocab;
    worst = std::max(worst, autoglm::test::max_rel_diff(a + off, b + off, vocab));
  }
  return worst;
}

// transformers' low-precision prompt logits from the GPU machine (scripts/gpu_check.sh runs
// lowp_reference.py --logits-out into AUTOGLM_HF_LOWP_LOGITS_DIR); empty when not set.
std::optional<SafetensorsFile> hf_gpu_logits(const std::string& fixture, DType dtype) {
  const char* dir = std::getenv("AUTOGLM_HF_LOWP_LOGITS_DIR");
  if (dir == nullptr || *dir == '\0') return std::nullopt;
  const auto path =
      std::filesystem::path(dir) / (fixture + "." + hf_dtype_name(dtype) + ".safetensors");
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " missing although AUTOGLM_HF_LOWP_LOGITS_DIR is set";
    return std::nullopt;
  }
  return SafetensorsFile::open(path.string());
}

const float* tensor_data(const SafetensorsFile& f, const std::string& name, size_t count) {
  for (const SafetensorsTensor& t : f.tensors()) {
    if (t.name == name && t.element_count == count && t.dtype == DType::kF32) {
      return static_cast<const float*>(f.data(t));
    }
  }
  ADD_FAILURE() << f.path() << ": no fp32 tensor " << name << " of " << count << " values";
  return nullptr;
}

// Runs without a GPU: lowp_error.json must describe the fixture as it is now (same prompts, its
// recorded flips at the fp32 greedy tokens and margins of reference.json), so that regenerating
// a fixture without rerunning scripts/lowp_reference.py fails here rather than loosening or
// breaking the GPU criteria silently.
TEST(CudaCriteria, LowpErrorMatchesTheFixture) {
  const auto dirs = autoglm::test::reference_model_dirs();
  ASSERT_FALSE(dirs.empty());
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const Json ref = read_json(dir / "reference.json");
    ASSERT_TRUE(std::filesystem::exists(dir / "lowp_error.json"))
        << "run scripts/lowp_reference.py";
    const Json lowp = read_json(dir / "lowp_error.json");
    for (DType dtype : kDtypes) {
      const Json& d = lowp.at("dtypes").at(hf_dtype_name(dtype));
      ASSERT_EQ(d.at("prompts").size(), ref.at("prompts").size());
      int total = 0;
      for (const Json& p : ref.at("prompts")) {
        const Json& got = d.at("prompts").at(p.at("name").get<std::string>());
        const auto greedy = p.at("greedy_ids").get<std::vector<int32_t>>();
        const auto margins = p.at("greedy_margins").get<std::vector<double>>();
        total += static_cast<int>(greedy.size());
        for (const Json& f : got.at("teacher_forced_flips")) {
          const size_t step = f.at("step").get<size_t>();
          ASSERT_LT(step, greedy.size());
          EXPECT_EQ(f.at("fp32").get<int32_t>(), greedy[step]);
          EXPECT_NEAR(f.at("fp32_margin").get<double>(), margins[step], 1e-6);
        }
      }
      EXPECT_EQ(d.at("teacher_forced_total").get<int>(), total);
    }
  }
}

using CudaBackendE2E = cuda::test::FixtureModelsTest;

CudaBackendOptions options_for(DType dtype) {
  CudaBackendOptions o = test_options();
  o.dtype = dtype;
  return o;
}

// Prefill logits of every prompt, in BF16 and in FP16: the worst row's max_rel_diff against
// the fp32 truth within max(kFactor x transformers' own in that dtype, floor). With
// AUTOGLM_HF_LOWP_LOGITS_DIR set, also reports the distance to transformers' own logits in that
// dtype computed on this GPU, next to transformers' distance to the fp32 truth.
TEST_F(CudaBackendE2E, LogitsMatchTransformers) {
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    for (DType dtype : kDtypes) {
      SCOPED_TRACE(m.name + " " + hf_dtype_name(dtype));
      const LowpReference hf = load_lowp_reference(dir, dtype);
      const auto hf_gpu = hf_gpu_logits(m.name, dtype);
      auto be = make_cuda_backend(*m.model, options_for(dtype));
      const double tol = std::max(kFactor * hf.worst_max_rel_diff, logits_floor(dtype));
      double worst = 0;
      for (size_t i = 0; i < m.prompts.size(); ++i) {
        const autoglm::test::ReferencePrompt& p = m.prompts[i];
        const size_t n = p.ids.size();
        const auto logits = autoglm::test::run_step(
            *be, {{p.ids, 0, autoglm::test::contiguous_blocks(n, kBlockSize, 3)}});
        ASSERT_TRUE(all_finite(logits)) << p.name;  // max_rel_diff alone would let NaN through
        const double ours = worst_row_rel_diff(logits.data(), p.logits.data(), n, m.vocab());
        worst = std::max(worst, ours);
        std::printf("[logits] %s/%s %s max_rel_diff ours %.4g transformers %.4g\n", m.name.c_str(),
                    p.name.c_str(), hf_dtype_name(dtype), ours, hf.max_rel_diff.at(p.name));
        // lowp_reference.py names them like reference_logits.safetensors: logits.<prompt index>.
        const float* gpu =
            hf_gpu ? tensor_data(*hf_gpu, "logits." + std::to_string(i), n * m.vocab()) : nullptr;
        if (gpu != nullptr) {
          std::printf(
              "[hf-gpu] %s/%s %s max_rel_diff(ours, hf) %.4g max_rel_diff(hf, fp32) "
              "%.4g max_rel_diff(ours, fp32) %.4g\n",
              m.name.c_str(), p.name.c_str(), hf_dtype_name(dtype),
              worst_row_rel_diff(logits.data(), gpu, n, m.vocab()),
              worst_row_rel_diff(gpu, p.logits.data(), n, m.vocab()), ours);
        }
      }
      EXPECT_LE(worst, tol) << "transformers' own worst in this dtype is " << hf.worst_max_rel_diff;
      std::printf("[logits] %s %s worst ours %.4g transformers %.4g tolerance %.4g %s\n",
                  m.name.c_str(), hf_dtype_name(dtype), worst, hf.worst_max_rel_diff, tol,
                  worst <= tol ? "PASS" : "FAIL");
    }
  }
}

// Teacher-forced greedy, in BF16 and in FP16: prefill, then 32 steps each fed transformers'
// fp32 greedy token; our argmax at each step is compared with the fp32 greedy token. A
// disagreement where the fp32 top-2 margin (reference.json greedy_margins) is below
//   epsilon = max(kFactor x the widest fp32 margin at which transformers itself, in this
//                 dtype, flips (lowp_error.json), tie_floor(dtype))
// is a reported tie. Per prompt at least 30 of 32 steps agree, ties excluded; per fixture, all
// disagreements, ties included, are at most max(kFactor x transformers' own, 3).
TEST_F(CudaBackendE2E, GreedyContinuationMatchesTransformers) {
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    for (DType dtype : kDtypes) {
      SCOPED_TRACE(m.name + " " + hf_dtype_name(dtype));
      const LowpReference hf = load_lowp_reference(dir, dtype);
      const double epsilon = std::max(kFactor * hf.largest_flip_margin, tie_floor(dtype));
      auto be = make_cuda_backend(*m.model, options_for(dtype));
      int total = 0, flips = 0, ties = 0;
      for (const auto& p : m.prompts) {
        const auto found = hf.greedy_margins.find(p.name);
        ASSERT_NE(found, hf.greedy_margins.end())
            << "no greedy_margins for prompt '" << p.name << "' in " << dir.string();
        const std::vector<double>& margins = found->second;
        ASSERT_EQ(margins.size(), p.greedy.size());
        const int32_t len = static_cast<int32_t>(p.ids.size() + p.greedy.size());
        SeqStep step{p.ids, 0, autoglm::test::contiguous_blocks(len, kBlockSize, 10)};
        int agree = 0, prompt_ties = 0;
        for (size_t i = 0; i < p.greedy.size(); ++i) {
          const auto logits = autoglm::test::run_step(*be, {step});
          ASSERT_TRUE(all_finite(logits));
          const float* last = logits.data() + (step.ids.size() - 1) * m.vocab();
          const int32_t got = autoglm::test::argmax(last, m.vocab());
          if (got == p.greedy[i]) {
            ++agree;
          } else {
            const bool tie = margins[i] < epsilon;
            prompt_ties += tie;
            std::printf(
                "[greedy] %s/%s %s step %zu: ours %d, transformers %d, fp32 margin "
                "%.4g %s epsilon %.4g (%s; our relative margin %.3g)\n",
                m.name.c_str(), p.name.c_str(), hf_dtype_name(dtype), i, got, p.greedy[i],
                margins[i], tie ? "<" : ">=", epsilon, tie ? "tie" : "MISMATCH",
                top2_margin(last, m.vocab()));
          }
          step.first_pos += static_cast<int32_t>(step.ids.size());
          step.ids = {p.greedy[i]};
        }
        const int n = static_cast<int>(p.greedy.size());
        EXPECT_GE(agree + prompt_ties, n - 2) << p.name << ": non-tie mismatches";
        std::printf("[greedy] %s/%s %s %d of %d agree, %d ties\n", m.name.c_str(), p.name.c_str(),
                    hf_dtype_name(dtype), agree, n, prompt_ties);
        total += n;
        flips += n - agree;
        ties += prompt_ties;
      }
      const double allowed = std::max(kFactor * hf.teacher_forced_flips, 3.0);
      EXPECT_LE(flips, allowed) << "disagreements, ties included";
      std::printf(
          "[greedy-total] %s %s agree %d of %d, ties %d, epsilon %.4g; transformers' "
          "own %d of %d; disagreements allowed %.1f\n",
          m.name.c_str(), hf_dtype_name(dtype), total - flips, total, ties, epsilon,
          hf.teacher_forced_total - hf.teacher_forced_flips, hf.teacher_forced_total, allowed);
    }
  }
}

// Greedy-decodes the 8 prompts in one ragged batch, then replays each sequence alone with the
// same tokens: the logits must agree closely and the argmax exactly, except at near-ties.
TEST_F(CudaBackendE2E, BatchOfEightDecodesLikeEachSequenceAlone) {
  constexpr int kSteps = 12;
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    auto be = make_cuda_backend(*m.model, test_options());
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    prompts.push_back({m.prompts[1].ids.begin(), m.prompts[1].ids.begin() + 3});
    std::vector<SeqStep> seqs;
    int32_t next_block = 0;
    for (const auto& ids : prompts) {
      seqs.push_back({ids, 0,
                      autoglm::test::scattered_blocks(static_cast<int32_t>(ids.size()) + kSteps,
                                                      kBlockSize, next_block, kPoolBlocks / 2)});
      next_block += static_cast<int32_t>(seqs.back().blocks.size());
    }
    // Batched run: record each sequence's last-row logits per step.
    std::vector<std::vector<std::vector<float>>> batched(seqs.size());
    std::vector<std::vector<int32_t>> tokens(seqs.size());
    std::vector<SeqStep> run = seqs;
    for (int step = 0; step < kSteps; ++step) {
      const auto logits = autoglm::test::run_step(*be, run);
      ASSERT_TRUE(all_finite(logits));
      size_t row = 0;
      for (size_t s = 0; s < run.size(); ++s) {
        row += run[s].ids.size();
        const float* last = logits.data() + (row - 1) * m.vocab();
        batched[s].emplace_back(last, last + m.vocab());
        tokens[s].push_back(autoglm::test::argmax(last, m.vocab()));
        run[s].first_pos += static_cast<int32_t>(run[s].ids.size());
        run[s].ids = {tokens[s].back()};
      }
    }
    // Each alone, on the other half of the pool, fed the batched run's tokens.
    for (size_t s = 0; s < seqs.size(); ++s) {
      SeqStep alone = seqs[s];
      for (int32_t& b : alone.blocks) b += kPoolBlocks / 2;
      for (int step = 0; step < kSteps; ++step) {
        const auto logits = autoglm::test::run_step(*be, {alone});
        ASSERT_TRUE(all_finite(logits));
        const float* last = logits.data() + (alone.ids.size() - 1) * m.vocab();
        const auto& ref = batched[s][step];
        EXPECT_LT(autoglm::test::max_rel_diff(last, ref.data(), m.vocab()), 1e-2)
            << "sequence " << s << " step " << step;
        const int32_t got = autoglm::test::argmax(last, m.vocab());
        if (got != tokens[s][step]) {
          EXPECT_LT(top2_margin(ref.data(), m.vocab()), 1e-2)
              << "sequence " << s << " step " << step << ": argmax differs without a near-tie";
        }
        alone.first_pos += static_cast<int32_t>(alone.ids.size());
        alone.ids = {tokens[s][step]};
      }
    }
  }
}

// forward_sample() on the device picks what the host reference picks from forward()'s logits
// of the same batch: greedy, seeded sampling with truncation, penalties, and logprobs.
TEST_F(CudaBackendE2E, DeviceSamplingMatchesHostSamplingOfTheSameLogits) {
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    auto be = make_cuda_backend(*m.model, test_options());
    std::vector<SeqStep> seqs;
    int32_t next_block = 0;
    for (const auto& p : m.prompts) {
      seqs.push_back({p.ids, 0,
                      autoglm::test::contiguous_blocks(static_cast<int32_t>(p.ids.size()),
                                                       kBlockSize, next_block)});
      next_block += static_cast<int32_t>(seqs.back().blocks.size());
    }
    const ForwardBatchArrays batch = autoglm::test::make_batch(*be, seqs);
    const size_t rows = batch.logits_rows.size();
    std::vector<float> logits(rows * m.vocab());
    be->forward(batch.view(), logits);
    std::vector<RowSamplingParams> params(rows);
    std::vector<LogitAdjustment> adjustments;
    for (size_t r = 0; r < rows; ++r) {
      RowSamplingParams& p = params[r];
      p.uniform = (static_cast<double>(r) + 0.37) / static_cast<double>(rows);
      switch (r % 4) {
        case 0:
          break;  // greedy
        case 1:
          p.temperature = 0.8f, p.top_k = 20, p.top_p = 0.9f, p.top_logprobs = 5;
          break;
        case 2:
          p.temperature = 1.0f, p.min_p = 0.05f;
          break;
        default:
          p.repetition_penalty = 1.2f, p.frequency_penalty = 0.3f, p.top_logprobs = 0;
          p.adjust_begin = static_cast<int32_t>(adjustments.size());
          for (int32_t t = 0; t < 8; ++t) adjustments.push_back({t * 3, 0.5f, t % 3, 1});
          p.adjust_end = static_cast<int32_t>(adjustments.size());
      }
    }
    std::vector<RowSample> got(rows);
    be->forward_sample(batch.view(), SampleBatch{params, adjustments}, got);
    for (size_t r = 0; r < rows; ++r) {
      const RowSamplingParams& p = params[r];
      const RowSample want = sample_row(
          std::span<float>(logits.data() + r * m.vocab(), static_cast<size_t>(m.vocab())), p,
          std::span<const LogitAdjustment>(adjustments)
              .subspan(static_cast<size_t>(p.adjust_begin),
                       static_cast<size_t>(p.adjust_end - p.adjust_begin)));
      EXPECT_EQ(got[r].token, want.token) << "row " << r;
      EXPECT_EQ(got[r].flags, 0) << "row " << r;
      if (p.top_logprobs >= 0) {
        EXPECT_NEAR(got[r].logprob, want.logprob, 1e-4) << "row " << r;
      }
    }
  }
}

TEST_F(CudaBackendE2E, ModelThatDoesNotFitFailsWithTheNumbers) {
  autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dirs_.front());
  CudaBackendOptions o = test_options();
  o.memory_fraction = 1e-7;  // ~10 KB of an 80 GB device
  try {
    make_cuda_backend(*m.model, o);
    FAIL() << "expected a budget error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    const std::string what = e.what();
    EXPECT_NE(what.find("weights"), std::string::npos) << what;
    EXPECT_NE(what.find("budget"), std::string::npos) << what;
    EXPECT_NE(what.find("free"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace autoglm
