// cuda_greedy: loads a model directory onto the GPU with the CUDA backend and greedy-decodes
// from given prompt token ids, printing one JSON object (ids, top-2 margins, timings). Used by
// scripts/gpu_check.sh for the full-size check against transformers; independent of the
// Engine so that the backend can be checked on its own.
// Thread ownership: the test (or program) main thread only.
//   cuda_greedy MODEL_DIR IDS(comma-separated) N_TOKENS [MEMORY_FRACTION]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "model/model_dir.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One greedy step for a single sequence whose `ids` start at `first_pos`.
std::vector<float> step(autoglm::Backend& be, const std::vector<int32_t>& ids, int32_t first_pos,
                        int32_t total_len) {
  const int32_t bs = be.kv_pool().block_size;
  autoglm::ForwardBatchArrays b;
  b.max_blocks_per_seq = (total_len + bs - 1) / bs;
  for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(i);
  b.seq_start = {0, static_cast<int32_t>(ids.size())};
  b.context_len = {first_pos + static_cast<int32_t>(ids.size())};
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t p = first_pos + static_cast<int32_t>(i);
    b.token_ids.push_back(ids[i]);
    b.positions.push_back(p);
    b.slot_mapping.push_back(p);  // blocks 0.. in order: slot == position
  }
  b.logits_rows = {static_cast<int32_t>(ids.size()) - 1};
  std::vector<float> logits(be.vocab_size());
  be.forward(b.view(), logits);
  return logits;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IDS N_TOKENS [MEMORY_FRACTION]\n", argv[0]);
    return 2;
  }
  try {
    std::vector<int32_t> prompt;
    std::stringstream ss(argv[2]);
    for (std::string tok; std::getline(ss, tok, ',');) prompt.push_back(std::stoi(tok));
    const int n_new = std::atoi(argv[3]);
    const auto t_load = std::chrono::steady_clock::now();
    auto model = autoglm::load_model_directory(argv[1]);
    autoglm::CudaBackendOptions o;
    o.max_context_len = 4096;
    if (argc > 4) o.memory_fraction = std::atof(argv[4]);
    o.max_batched_tokens = std::max<int32_t>(512, static_cast<int32_t>(prompt.size()));
    auto be = autoglm::make_cuda_backend(*model, o);
    const double load_s = seconds_since(t_load);
    const int32_t total = static_cast<int32_t>(prompt.size()) + n_new;
    std::vector<int32_t> out;
    std::vector<double> margins;
    const auto t_prefill = std::chrono::steady_clock::now();
    std::vector<float> logits = step(*be, prompt, 0, total);
    const double prefill_s = seconds_since(t_prefill);
    const auto t_decode = std::chrono::steady_clock::now();
    for (int i = 0; i < n_new; ++i) {
      std::vector<float> sorted = logits;
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      margins.push_back(sorted[0] - sorted[1]);
      out.push_back(
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
      if (i + 1 < n_new) {
        logits = step(*be, {out.back()}, static_cast<int32_t>(prompt.size()) + i, total);
      }
    }
    const double decode_s = seconds_since(t_decode);
    std::printf("{\"ids\": [");
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? ", " : "", out[i]);
    std::printf("], \"margins\": [");
    for (size_t i = 0; i < margins.size(); ++i) std::printf("%s%.4f", i ? ", " : "", margins[i]);
    std::printf("], \"kv_blocks\": %d, \"load_s\": %.2f, \"prefill_s\": %.4f, ",
                be->kv_pool().num_blocks, load_s, prefill_s);
    std::printf("\"decode_tok_s\": %.2f}\n", n_new > 1 ? (n_new - 1) / decode_s : 0.0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_greedy: %s\n", e.what());
    return 1;
  }
}
