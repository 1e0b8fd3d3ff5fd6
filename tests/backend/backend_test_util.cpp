// See backend_test_util.h.
#include "backend_test_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/json_util.h"
#include "core/mapped_file.h"
#include "model/safetensors.h"

namespace autoglm::test {

namespace fs = std::filesystem;

std::vector<fs::path> reference_model_dirs() {
  std::vector<fs::path> out;
  // The architecture fixtures, and the bundled default model (models/autoglm-tiny).
  for (const fs::path& root :
       {fs::path(AUTOGLM_FIXTURES_DIR) / "models", fs::path(AUTOGLM_SOURCE_DIR) / "models"}) {
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::directory_iterator(root)) {
      if (fs::exists(e.path() / "reference.json")) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

ReferenceModel load_reference_model(const fs::path& dir) {
  ReferenceModel m;
  m.name = dir.filename().string();
  m.model = load_model_directory(dir.string());
  const std::string ref_path = (dir / "reference.json").string();
  const Json ref = parse_json_limited(read_file_capped(ref_path, 64u << 20), ref_path);
  SafetensorsFile logits = SafetensorsFile::open((dir / "reference_logits.safetensors").string());
  for (const Json& p : ref.at("prompts")) {
    ReferencePrompt pr;
    pr.name = p.at("name").get<std::string>();
    pr.ids = p.at("ids").get<std::vector<int32_t>>();
    pr.greedy = p.at("greedy_ids").get<std::vector<int32_t>>();
    const std::string tensor = p.at("logits_tensor").get<std::string>();
    for (const SafetensorsTensor& t : logits.tensors()) {
      if (t.name != tensor) continue;
      const float* data = static_cast<const float*>(logits.data(t));
      pr.logits.assign(data, data + t.element_count);
    }
    m.prompts.push_back(std::move(pr));
  }
  return m;
}

ForwardBatchArrays make_batch(const Backend& backend, const std::vector<SeqStep>& seqs) {
  const int32_t bs = backend.kv_pool().block_size;
  ForwardBatchArrays b;
  b.seq_start = {0};
  for (const auto& s : seqs) {
    b.max_blocks_per_seq = std::max<int32_t>(b.max_blocks_per_seq, s.blocks.size());
  }
  for (const auto& s : seqs) {
    for (size_t i = 0; i < s.ids.size(); ++i) {
      const int32_t p = s.first_pos + static_cast<int32_t>(i);
      b.logits_rows.push_back(static_cast<int32_t>(b.token_ids.size()));
      b.token_ids.push_back(s.ids[i]);
      b.positions.push_back(p);
      b.slot_mapping.push_back(s.blocks[p / bs] * bs + p % bs);
    }
    b.seq_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_len.push_back(s.first_pos + static_cast<int32_t>(s.ids.size()));
    std::vector<int32_t> row = s.blocks;
    row.resize(b.max_blocks_per_seq, 0);
    b.block_table.insert(b.block_table.end(), row.begin(), row.end());
  }
  return b;
}

std::vector<float> run_step(Backend& backend, const std::vector<SeqStep>& seqs) {
  const ForwardBatchArrays b = make_batch(backend, seqs);
  std::vector<float> logits(b.logits_rows.size() * backend.vocab_size());
  backend.forward(b.view(), logits);
  return logits;
}

std::vector<std::vector<int32_t>> greedy_steps(Backend& backend,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               int steps, StepFeed feed) {
  const bool pipelined = feed == StepFeed::kSampleRowsPipelined;
  const int32_t bs = backend.kv_pool().block_size;
  std::vector<SeqStep> seqs;
  int32_t next_block = 0;
  for (const std::vector<int32_t>& p : prompts) {
    const int32_t tokens = static_cast<int32_t>(p.size()) + steps;
    seqs.push_back({p, 0, contiguous_blocks(tokens, bs, next_block)});
    next_block += static_cast<int32_t>(seqs.back().blocks.size());
  }
  const std::vector<RowSamplingParams> params(prompts.size());  // greedy
  std::vector<RowSample> samples(prompts.size());
  std::vector<std::vector<int32_t>> out(prompts.size());
  const auto submit = [&] {
    ForwardBatchArrays b = make_batch(backend, seqs);
    b.logits_rows.clear();  // the newest token of each sequence only
    for (size_t s = 0; s < seqs.size(); ++s) b.logits_rows.push_back(b.seq_start[s + 1] - 1);
    backend.submit_sample(b.view(), SampleBatch{params, {}});
    for (size_t s = 0; s < seqs.size(); ++s) {
      seqs[s].first_pos += static_cast<int32_t>(seqs[s].ids.size());
      seqs[s].ids = {previous_sample_token(static_cast<int32_t>(s))};
    }
  };
  const auto collect = [&] {
    backend.collect_sample(samples);
    for (size_t s = 0; s < seqs.size(); ++s) {
      out[s].push_back(samples[s].token);
      if (feed == StepFeed::kHostTokens) seqs[s].ids = {samples[s].token};
    }
  };
  for (int step = 0; step < steps; ++step) {
    submit();
    if (!pipelined || step > 0) collect();
  }
  if (pipelined && steps > 0) collect();
  return out;
}

std::vector<int32_t> contiguous_blocks(int32_t tokens, int32_t block_size, int32_t base) {
  std::vector<int32_t> out((tokens + block_size - 1) / block_size);
  std::iota(out.begin(), out.end(), base);
  return out;
}

std::vector<int32_t> scattered_blocks(int32_t tokens, int32_t block_size, int32_t seed,
                                      int32_t pool_blocks) {
  // A fixed permutation of the pool (multiplier coprime with the pool size), offset by seed.
  const int32_t n = (tokens + block_size - 1) / block_size;
  std::vector<int32_t> out(n);
  for (int32_t i = 0; i < n; ++i) {
    out[i] = static_cast<int32_t>((static_cast<int64_t>(i + seed) * 97 + 13) % pool_blocks);
  }
  return out;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

double max_rel_diff(const float* a, const float* b, size_t n) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  return max_abs_diff(a, b, n) / std::max(scale, 1e-30);
}

int32_t argmax(const float* row, int32_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

}  // namespace autoglm::test
