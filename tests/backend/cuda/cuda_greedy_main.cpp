// cuda_greedy: loads a model directory onto the GPU with the CUDA backend and greedy-decodes
// from given prompt token ids, printing one JSON object (ids, top-2 margins, timings). Used by
// scripts/gpu_check.sh for the full-size check against transformers; independent of the
// Engine so that the backend can be checked on its own. With --teacher it is teacher-forced:
// after the prompt it feeds the given ids (transformers' greedy continuation) instead of its
// own, and reports at every position its argmax, top-2 margin and how far the teacher's token
// is below its argmax, so that one near-tie cannot derail the rest of the comparison.
// Owned by gpuval. Thread ownership: the program's main thread only.
//   cuda_greedy MODEL_DIR IDS(comma-separated) N_TOKENS [MEMORY_FRACTION] [--teacher IDS]
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

std::vector<int32_t> parse_ids(const std::string& csv) {
  std::vector<int32_t> ids;
  std::stringstream ss(csv);
  for (std::string tok; std::getline(ss, tok, ',');) ids.push_back(std::stoi(tok));
  return ids;
}

// What the run reports per generated position.
struct Position {
  int32_t argmax = 0;
  double margin = 0;       // our top-1 minus top-2 logit
  double teacher_gap = 0;  // our top-1 logit minus our logit of the teacher's token
};

Position inspect(const std::vector<float>& logits, int32_t teacher) {
  std::vector<float> sorted = logits;
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
  Position p;
  p.argmax = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  p.margin = sorted[0] - sorted[1];
  if (teacher >= 0 && teacher < static_cast<int32_t>(logits.size())) {
    p.teacher_gap = sorted[0] - logits[teacher];
  }
  return p;
}

void print_json(const std::vector<Position>& out, bool teacher_forced, int32_t kv_blocks,
                double load_s, double prefill_s, double decode_tok_s) {
  const auto list = [&](const char* key, auto field, const char* fmt) {
    std::printf("\"%s\": [", key);
    for (size_t i = 0; i < out.size(); ++i) {
      if (i > 0) std::fputs(", ", stdout);
      std::printf(fmt, field(out[i]));
    }
    std::printf("], ");
  };
  std::printf("{\"teacher_forced\": %s, ", teacher_forced ? "true" : "false");
  list(
      "ids", [](const Position& p) { return p.argmax; }, "%d");
  list(
      "margins", [](const Position& p) { return p.margin; }, "%.4f");
  if (teacher_forced)
    list(
        "teacher_gaps", [](const Position& p) { return p.teacher_gap; }, "%.4f");
  std::printf("\"kv_blocks\": %d, \"load_s\": %.2f, \"prefill_s\": %.4f, ", kv_blocks, load_s,
              prefill_s);
  std::printf("\"decode_tok_s\": %.2f}\n", decode_tok_s);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  std::vector<int32_t> teacher;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--teacher" && i + 1 < argc) {
      teacher = parse_ids(argv[++i]);
    } else {
      args.emplace_back(argv[i]);
    }
  }
  if (args.size() < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IDS N_TOKENS [MEMORY_FRACTION] [--teacher IDS]\n",
                 argv[0]);
    return 2;
  }
  try {
    const std::vector<int32_t> prompt = parse_ids(args[1]);
    const int n_new = std::stoi(args[2]);
    if (!teacher.empty() && static_cast<int>(teacher.size()) < n_new) {
      std::fprintf(stderr, "cuda_greedy: --teacher has %zu ids, fewer than N_TOKENS %d\n",
                   teacher.size(), n_new);
      return 2;
    }
    const auto t_load = std::chrono::steady_clock::now();
    auto model = autoglm::load_model_directory(args[0]);
    autoglm::CudaBackendOptions o;
    o.max_context_len = 4096;
    if (args.size() > 3) o.memory_fraction = std::stod(args[3]);
    o.max_batched_tokens = std::max<int32_t>(512, static_cast<int32_t>(prompt.size()));
    auto be = autoglm::make_cuda_backend(*model, o);
    const double load_s = seconds_since(t_load);
    const int32_t total = static_cast<int32_t>(prompt.size()) + n_new;
    std::vector<Position> out;
    const auto t_prefill = std::chrono::steady_clock::now();
    std::vector<float> logits = step(*be, prompt, 0, total);
    const double prefill_s = seconds_since(t_prefill);
    const auto t_decode = std::chrono::steady_clock::now();
    for (int i = 0; i < n_new; ++i) {
      out.push_back(inspect(logits, teacher.empty() ? -1 : teacher[i]));
      const int32_t next = teacher.empty() ? out.back().argmax : teacher[i];
      if (i + 1 < n_new) logits = step(*be, {next}, static_cast<int32_t>(prompt.size()) + i, total);
    }
    const double decode_s = seconds_since(t_decode);
    print_json(out, !teacher.empty(), be->kv_pool().num_blocks, load_s, prefill_s,
               n_new > 1 ? (n_new - 1) / decode_s : 0.0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_greedy: %s\n", e.what());
    return 1;
  }
}
