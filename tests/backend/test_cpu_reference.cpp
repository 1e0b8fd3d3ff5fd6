// The CPU backend against transformers' fp32 truth for every fixture model: full prefill
// logits, a prefill split into chunks, two sequences in one ragged batch, and 32-token greedy
// decode through the paged KV cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace autoglm {
namespace {

namespace fs = std::filesystem;

struct Prompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> greedy;
  std::vector<double> margins;
  std::vector<float> logits;  // [ids.size(), vocab]
};

struct Fixture {
  std::unique_ptr<LoadedModel> model;
  std::vector<Prompt> prompts;
};

Fixture load_fixture(const fs::path& dir) {
  Fixture f;
  f.model = load_model_directory(dir.string());
  const Json ref = parse_json_limited(read_file_capped((dir / "reference.json").string(), 64 << 20),
                                      "reference.json");
  SafetensorsFile logits = SafetensorsFile::open((dir / "reference_logits.safetensors").string());
  for (const Json& p : ref.at("prompts")) {
    Prompt pr;
    for (const Json& id : p.at("ids")) pr.ids.push_back(id.get<int32_t>());
    for (const Json& id : p.at("greedy_ids")) pr.greedy.push_back(id.get<int32_t>());
    for (const Json& m : p.at("greedy_margins")) pr.margins.push_back(m.get<double>());
    const std::string name = p.at("logits_tensor").get<std::string>();
    for (const SafetensorsTensor& t : logits.tensors()) {
      if (t.name != name) continue;
      const float* data = static_cast<const float*>(logits.data(t));
      pr.logits.assign(data, data + t.element_count);
    }
    f.prompts.push_back(std::move(pr));
  }
  return f;
}

std::vector<fs::path> fixture_dirs() {
  std::vector<fs::path> out;
  const fs::path root = fs::path(AUTOGLM_FIXTURES_DIR) / "models";
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (fs::exists(e.path() / "reference.json")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One sequence's step: tokens [first, first+count) of `ids`, the sequence's blocks 0..n.
struct SeqStep {
  std::vector<int32_t> ids;
  int32_t first_pos;
  std::vector<int32_t> blocks;
};

// Runs one ragged batch and returns logits for every token.
std::vector<float> run(CpuBackend& be, const std::vector<SeqStep>& seqs) {
  const int32_t bs = be.kv_pool().block_size;
  ForwardBatch b;
  std::vector<int32_t> tok, pos, start{0}, ctx, table, slots, rows;
  int32_t max_blocks = 0;
  for (const auto& s : seqs) max_blocks = std::max<int32_t>(max_blocks, s.blocks.size());
  for (const auto& s : seqs) {
    for (size_t i = 0; i < s.ids.size(); ++i) {
      const int32_t p = s.first_pos + static_cast<int32_t>(i);
      rows.push_back(static_cast<int32_t>(tok.size()));
      tok.push_back(s.ids[i]);
      pos.push_back(p);
      slots.push_back(s.blocks[p / bs] * bs + p % bs);
    }
    start.push_back(static_cast<int32_t>(tok.size()));
    ctx.push_back(s.first_pos + static_cast<int32_t>(s.ids.size()));
    std::vector<int32_t> row = s.blocks;
    row.resize(max_blocks, 0);
    table.insert(table.end(), row.begin(), row.end());
  }
  b.token_ids = tok;
  b.positions = pos;
  b.seq_start = start;
  b.context_len = ctx;
  b.block_table = table;
  b.max_blocks_per_seq = max_blocks;
  b.slot_mapping = slots;
  b.logits_rows = rows;
  std::vector<float> logits(rows.size() * be.vocab_size());
  be.forward(b, logits);
  return logits;
}

double max_abs(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Blocks deliberately out of order, so that paging is exercised.
std::vector<int32_t> blocks_for(int32_t tokens, int32_t block_size, int32_t base) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i * block_size < tokens; ++i) out.push_back(base + (i * 7) % 64);
  return out;
}

constexpr double kTolerance = 5e-4;  // fp32 vs fp32, different summation order

TEST(CpuReference, PrefillChunkedBatchedAndGreedyMatchTransformers) {
  const auto dirs = fixture_dirs();
  if (dirs.empty()) GTEST_SKIP() << "no fixture models under tests/fixtures/models";
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    Fixture f = load_fixture(dir);
    const int32_t vocab = static_cast<int32_t>(f.model->config.vocab_size);
    CpuBackend be(*f.model, KvPoolShape{256, 4});
    for (size_t pi = 0; pi < f.prompts.size(); ++pi) {
      const Prompt& p = f.prompts[pi];
      SCOPED_TRACE("prompt " + std::to_string(pi));
      const int32_t n = static_cast<int32_t>(p.ids.size());
      ASSERT_EQ(p.logits.size(), static_cast<size_t>(n) * vocab);
      const auto blocks = blocks_for(n + 40, 4, 1);
      // Whole prompt in one step.
      auto full = run(be, {{p.ids, 0, blocks}});
      const double diff = max_abs(full.data(), p.logits.data(), full.size());
      EXPECT_LT(diff, kTolerance);
      RecordProperty(dir.filename().string() + "_prompt" + std::to_string(pi) + "_max_abs",
                     std::to_string(diff));
      // Same prompt in two chunks, next to a second sequence decoding in the same batch.
      if (n >= 2) {
        const int32_t cut = n / 2;
        const std::vector<int32_t> a(p.ids.begin(), p.ids.begin() + cut);
        const std::vector<int32_t> rest(p.ids.begin() + cut, p.ids.end());
        const auto other = blocks_for(8, 4, 100);
        run(be, {{a, 0, blocks}, {{p.ids[0]}, 0, other}});
        auto second = run(be, {{rest, cut, blocks}, {{p.ids[0]}, 0, other}});
        EXPECT_LT(max_abs(second.data(), p.logits.data() + static_cast<size_t>(cut) * vocab,
                          rest.size() * vocab),
                  kTolerance);
      }
      // Greedy decode through the cache; compare while the reference's choice is clear.
      std::vector<float> last(full.end() - vocab, full.end());
      size_t compared = 0;
      for (size_t step = 0; step < p.greedy.size(); ++step, ++compared) {
        const int32_t next =
            static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        if (p.margins[step] < 1e-3) break;  // a near tie: both answers are right
        ASSERT_EQ(next, p.greedy[step]) << "greedy step " << step;
        last = run(be, {{{next}, n + static_cast<int32_t>(step), blocks}});
      }
      // Ties are rare: most prompts must be checked well into the continuation.
      EXPECT_GE(compared, 4u) << "greedy continuation checked for too few steps";
    }
  }
}

}  // namespace
}  // namespace autoglm
