// cuda_decode_bench: the decode step of a model directory on the GPU at several batch sizes,
// with and without CUDA graphs, next to the bandwidth ceiling: each step must at least read
// every weight once and every sequence's keys and values. Sequences are prefilled with random
// prompts, then decode greedily through forward_sample (device sampling, one sync per step, as
// the engine runs it). Prints one line per (graphs, batch):
//   [decode] graphs on batch 8 ctx 160 step_ms 6.01 tok_s 1331 GB_s 3950 bytes_per_step 2.4e10
// and first one prefill of PREFILL_TOKENS (default 4096) in one step, with its matmul and
// attention FLOPs:
//   [prefill] tokens 4096 ms 210.3 tflop 82.1 tflop_s 390
// Then the same decode steps pipelined as overlapped scheduling runs them (each step submitted
// before the previous one is collected, its tokens named as that step's sample rows):
//   [pipelined] graphs on batch 8 ctx 192 step_ms 5.93 tok_s 1349
// With MIXED_STEP=D,C,P in the environment it times a serving step under load instead: D
// sequences decoding one token each after P prompt tokens, beside one prompt chunk of C tokens
// in the same step (as the engine mixes them), next to the same D decode rows alone:
//   [mixed] decode 254 ctx 1510 chunk 770 mixed_ms 33.1 decode_only_ms 12.4 chunk_ms 20.7
// and both kinds of step again pipelined:
//   [mixed-pipelined] decode 254 ctx 1602 chunk 770 mixed_ms 33.809 decode_only_ms 12.396
// (PROFILE_MIXED=1 brackets one mixed step with cudaProfilerStart/Stop, for
// `ncu --profile-from-start off`.)
// Used by scripts/gpu_check.sh. Thread ownership: the program's main thread only.
//   cuda_decode_bench MODEL_DIR [BATCHES (comma-separated, default 1,8,64,256)] [PROMPT_LEN]
//                     [PREFILL_TOKENS]
// KV_CACHE_DTYPE=fp8 in the environment runs every step over an FP8 KV cache, QUANTIZATION=fp8
// with FP8 weights (W8A8; the bandwidth line still counts the checkpoint's weight bytes).
#include <cuda_profiler_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "model/model_dir.h"

namespace {

using autoglm::ForwardBatchArrays;

constexpr int32_t kBlockSize = 16;
constexpr int kWarmSteps = 3;
constexpr int kTimedSteps = 32;

struct Seq {
  int32_t len = 0;  // tokens in the KV
  int32_t first_block = 0;
};

// Bytes one decode step must read at least: every weight but the embedding table (only the
// batch's rows of it are gathered), which stays in as the lm_head when the two are tied.
double weight_bytes(const autoglm::LoadedModel& model) {
  const autoglm::ModelWeights& w = model.weights;
  double bytes = 0;
  const auto add = [&](const autoglm::TensorView& t) {
    if (t.present()) bytes += static_cast<double>(t.element_count()) * 2;  // BF16 on the GPU
  };
  add(w.lm_head);
  add(w.final_norm);
  for (const autoglm::LayerWeights& layer : w.layers) {
    for (const autoglm::TensorView& t : layer.tensors) add(t);
  }
  return bytes;
}

ForwardBatchArrays decode_batch(const std::vector<Seq>& seqs, const std::vector<int32_t>& next,
                                int32_t blocks_per_seq) {
  ForwardBatchArrays b;
  b.max_blocks_per_seq = blocks_per_seq;
  b.seq_start = {0};
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int32_t pos = seqs[s].len;
    b.token_ids.push_back(next[s]);
    b.positions.push_back(pos);
    b.slot_mapping.push_back((seqs[s].first_block + pos / kBlockSize) * kBlockSize +
                             pos % kBlockSize);
    b.logits_rows.push_back(static_cast<int32_t>(s));
    b.seq_start.push_back(static_cast<int32_t>(s + 1));
    b.context_len.push_back(pos + 1);
    for (int32_t i = 0; i < blocks_per_seq; ++i) b.block_table.push_back(seqs[s].first_block + i);
  }
  return b;
}

// Prefills every sequence with `prompt_len` random tokens, several sequences per step.
void prefill(autoglm::Backend& be, std::vector<Seq>& seqs, int32_t prompt_len,
             int32_t blocks_per_seq, int32_t max_tokens, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> token(0, be.vocab_size() - 1);
  const int32_t per_step = std::max<int32_t>(1, max_tokens / prompt_len);
  for (size_t s0 = 0; s0 < seqs.size(); s0 += per_step) {
    ForwardBatchArrays b;
    b.max_blocks_per_seq = blocks_per_seq;
    b.seq_start = {0};
    const size_t s1 = std::min(seqs.size(), s0 + per_step);
    for (size_t s = s0; s < s1; ++s) {
      for (int32_t p = 0; p < prompt_len; ++p) {
        b.token_ids.push_back(token(rng));
        b.positions.push_back(p);
        b.slot_mapping.push_back((seqs[s].first_block + p / kBlockSize) * kBlockSize +
                                 p % kBlockSize);
      }
      b.logits_rows.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
      b.seq_start.push_back(static_cast<int32_t>(b.token_ids.size()));
      b.context_len.push_back(prompt_len);
      for (int32_t i = 0; i < blocks_per_seq; ++i) b.block_table.push_back(seqs[s].first_block + i);
      seqs[s].len = prompt_len;
    }
    std::vector<autoglm::RowSamplingParams> params(b.logits_rows.size());
    std::vector<autoglm::RowSample> out(params.size());
    be.forward_sample(b.view(), autoglm::SampleBatch{params, {}}, out);
  }
}

// kTimedSteps steps of batches from `make`, each submitted before the previous one is
// collected; the decode rows name the previous step's samples on the device
// (previous_sample_token) and advance. Returns the mean wall time per step.
template <typename Make>
double pipelined_steps(autoglm::Backend& be, std::vector<Seq>& seqs, std::vector<int32_t>& next,
                       Make make) {
  std::vector<autoglm::RowSample> out;
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < kTimedSteps; ++step) {
    const ForwardBatchArrays b = make();
    const std::vector<autoglm::RowSamplingParams> params(b.logits_rows.size());
    be.submit_sample(b.view(), autoglm::SampleBatch{params, {}});
    if (step > 0) be.collect_sample(out);
    out.resize(params.size());  // the size of the step just submitted, collected next
    for (size_t s = 0; s < seqs.size(); ++s) {
      next[s] = autoglm::previous_sample_token(static_cast<int32_t>(s));
      seqs[s].len += 1;
    }
  }
  be.collect_sample(out);
  for (size_t s = 0; s < seqs.size(); ++s) next[s] = out[s].token;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kTimedSteps;
}

bool env_is(const char* name, const char* value) {
  const char* set = std::getenv(name);
  return set != nullptr && std::string(set) == value;
}

bool kv_fp8() {
  return env_is("KV_CACHE_DTYPE", "fp8");
}

bool weights_fp8() {
  return env_is("QUANTIZATION", "fp8");
}

void run(const autoglm::LoadedModel& model, bool graphs, const std::vector<int32_t>& batches,
         int32_t prompt_len) {
  const int32_t max_batch = *std::max_element(batches.begin(), batches.end());
  const int32_t max_len = prompt_len + kWarmSteps + 2 * kTimedSteps + 1;
  const int32_t blocks_per_seq = (max_len + kBlockSize - 1) / kBlockSize;
  autoglm::CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.max_num_seqs = max_batch;
  o.max_batched_tokens = std::max(4096, max_batch);
  o.max_context_len = 4096;
  o.num_kv_blocks = max_batch * blocks_per_seq;
  o.cuda_graphs = graphs;
  o.kv_cache_fp8 = kv_fp8();
  o.weights_fp8 = weights_fp8();
  auto be = autoglm::make_cuda_backend(model, o);
  const double weights = weight_bytes(model);
  const autoglm::ModelConfig& c = model.config;
  const double kv_per_token = static_cast<double>(c.num_hidden_layers) * 2 *
                              static_cast<double>(c.num_key_value_heads * c.head_dim) *
                              (o.kv_cache_fp8 ? 1 : 2);
  std::mt19937 rng(1);
  for (const int32_t batch : batches) {
    std::vector<Seq> seqs(static_cast<size_t>(batch));
    for (int32_t s = 0; s < batch; ++s)
      seqs[static_cast<size_t>(s)].first_block = s * blocks_per_seq;
    prefill(*be, seqs, prompt_len, blocks_per_seq, o.max_batched_tokens, rng);
    std::vector<int32_t> next(seqs.size(), 1);
    std::vector<autoglm::RowSamplingParams> params(seqs.size());
    std::vector<autoglm::RowSample> out(seqs.size());
    double timed_s = 0, kv_bytes = 0;
    for (int step = 0; step < kWarmSteps + kTimedSteps; ++step) {
      const ForwardBatchArrays b = decode_batch(seqs, next, blocks_per_seq);
      const auto t0 = std::chrono::steady_clock::now();
      be->forward_sample(b.view(), autoglm::SampleBatch{params, {}}, out);
      const double dt =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (step >= kWarmSteps) {
        timed_s += dt;
        for (const Seq& s : seqs) kv_bytes += (s.len + 1) * kv_per_token;
      }
      for (size_t s = 0; s < seqs.size(); ++s) {
        next[s] = out[s].token;
        seqs[s].len += 1;
      }
    }
    const double step_s = timed_s / kTimedSteps;
    const double bytes = weights + kv_bytes / kTimedSteps;
    std::printf(
        "[decode] graphs %s batch %d ctx %d step_ms %.3f tok_s %.0f GB_s %.0f bytes_per_step "
        "%.4g\n",
        graphs ? "on" : "off", batch, seqs.front().len, step_s * 1e3, batch / step_s,
        bytes / step_s / 1e9, bytes);
    std::fflush(stdout);
    const double pipelined_s =
        pipelined_steps(*be, seqs, next, [&] { return decode_batch(seqs, next, blocks_per_seq); });
    std::printf("[pipelined] graphs %s batch %d ctx %d step_ms %.3f tok_s %.0f\n",
                graphs ? "on" : "off", batch, seqs.front().len, pipelined_s * 1e3,
                batch / pipelined_s);
    std::fflush(stdout);
  }
}

// One prompt of `tokens` tokens prefilled in one step (median of 3 after a warm-up). FLOPs:
// 2 per weight of the layers per token, and causal attention's QK^T and PV (4 * head_dim per
// query head and visible key); the lm_head runs on the last row only.
void prefill_bench(const autoglm::LoadedModel& model, int32_t tokens) {
  autoglm::CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.max_num_seqs = 1;
  o.max_batched_tokens = tokens;
  o.max_context_len = tokens;
  const int32_t blocks = (tokens + kBlockSize - 1) / kBlockSize;
  o.num_kv_blocks = blocks;
  o.kv_cache_fp8 = kv_fp8();
  o.weights_fp8 = weights_fp8();
  auto be = autoglm::make_cuda_backend(model, o);
  std::vector<Seq> seqs(1);
  std::mt19937 rng(2);
  std::vector<double> times;
  for (int run = 0; run < 4; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    prefill(*be, seqs, tokens, blocks, tokens, rng);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin() + 1, times.end());
  const double seconds = times[2];
  double layer_params = 0;
  for (const autoglm::LayerWeights& layer : model.weights.layers) {
    for (const autoglm::TensorView& t : layer.tensors) {
      if (t.present()) layer_params += static_cast<double>(t.element_count());
    }
  }
  const autoglm::ModelConfig& c = model.config;
  const double t = tokens;
  const double attention = static_cast<double>(c.num_hidden_layers * c.num_attention_heads) * 4.0 *
                           static_cast<double>(c.head_dim) * t * (t + 1) / 2;
  const double flop = 2 * layer_params * t + attention;
  std::printf("[prefill] tokens %d ms %.2f tflop %.2f tflop_s %.0f attention_share %.2f\n", tokens,
              seconds * 1e3, flop / 1e12, flop / seconds / 1e12, attention / flop);
  std::fflush(stdout);
}

// The mean wall time of `steps` forward_sample calls of batches from `make` (each after the
// previous one's samples are back), after `warm` untimed ones; `advance` runs after each.
template <typename Make, typename Advance>
double timed_steps(autoglm::Backend& be, int warm, int steps, Make make, Advance advance) {
  double timed_s = 0;
  for (int step = 0; step < warm + steps; ++step) {
    const ForwardBatchArrays b = make();
    std::vector<autoglm::RowSamplingParams> params(b.logits_rows.size());
    std::vector<autoglm::RowSample> out(params.size());
    const auto t0 = std::chrono::steady_clock::now();
    be.forward_sample(b.view(), autoglm::SampleBatch{params, {}}, out);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step >= warm) timed_s += dt;
    advance(out);
  }
  return timed_s / steps;
}

// A serving step under load (MIXED_STEP, see the top): `decode` sequences after `prompt_len`
// tokens each decode one token beside one new prompt's first `chunk` tokens (the chunk's
// sequence is prefilled from position 0 again every step), with CUDA graphs on as the engine
// runs: the mixed steps launch kernel by kernel, the decode-only ones replay their graph.
void mixed_bench(const autoglm::LoadedModel& model, int32_t decode, int32_t chunk,
                 int32_t prompt_len) {
  constexpr int kSteps = 16;
  const int32_t max_len = prompt_len + 2 * (kWarmSteps + kSteps + kTimedSteps) + 2;
  const int32_t blocks_per_seq = (std::max(max_len, chunk) + kBlockSize - 1) / kBlockSize;
  autoglm::CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.max_num_seqs = decode + 1;
  o.max_batched_tokens = std::max(4096, decode + chunk);
  o.max_context_len = 4096;
  o.num_kv_blocks = (decode + 1) * blocks_per_seq;
  o.cuda_graphs = true;
  o.kv_cache_fp8 = kv_fp8();
  o.weights_fp8 = weights_fp8();
  auto be = autoglm::make_cuda_backend(model, o);
  std::mt19937 rng(3);
  std::vector<Seq> seqs(static_cast<size_t>(decode));
  for (int32_t s = 0; s < decode; ++s)
    seqs[static_cast<size_t>(s)].first_block = s * blocks_per_seq;
  prefill(*be, seqs, prompt_len, blocks_per_seq, o.max_batched_tokens, rng);
  std::vector<int32_t> next(seqs.size(), 1);
  std::uniform_int_distribution<int32_t> token(0, be->vocab_size() - 1);
  const int32_t chunk_block = decode * blocks_per_seq;
  const auto with_chunk = [&] {
    ForwardBatchArrays b = decode_batch(seqs, next, blocks_per_seq);
    for (int32_t p = 0; p < chunk; ++p) {
      b.token_ids.push_back(token(rng));
      b.positions.push_back(p);
      b.slot_mapping.push_back((chunk_block + p / kBlockSize) * kBlockSize + p % kBlockSize);
    }
    b.logits_rows.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
    b.seq_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_len.push_back(chunk);
    for (int32_t i = 0; i < blocks_per_seq; ++i) b.block_table.push_back(chunk_block + i);
    return b;
  };
  const auto advance = [&](const std::vector<autoglm::RowSample>& out) {
    for (size_t s = 0; s < seqs.size(); ++s) {
      next[s] = out[s].token;
      seqs[s].len += 1;
    }
  };
  const double mixed_s = timed_steps(*be, kWarmSteps, kSteps, with_chunk, advance);
  const double decode_s = timed_steps(
      *be, kWarmSteps, kSteps, [&] { return decode_batch(seqs, next, blocks_per_seq); }, advance);
  std::printf("[mixed] decode %d ctx %d chunk %d mixed_ms %.3f decode_only_ms %.3f chunk_ms %.3f\n",
              decode, seqs.front().len, chunk, mixed_s * 1e3, decode_s * 1e3,
              (mixed_s - decode_s) * 1e3);
  std::fflush(stdout);
  // The same two kinds of step submitted ahead, as the engine overlaps them: the host's launch
  // work for a step hides behind the previous step's kernels.
  const double mixed_pipelined_s = pipelined_steps(*be, seqs, next, with_chunk);
  const double decode_pipelined_s =
      pipelined_steps(*be, seqs, next, [&] { return decode_batch(seqs, next, blocks_per_seq); });
  std::printf("[mixed-pipelined] decode %d ctx %d chunk %d mixed_ms %.3f decode_only_ms %.3f\n",
              decode, seqs.front().len, chunk, mixed_pipelined_s * 1e3, decode_pipelined_s * 1e3);
  std::fflush(stdout);
  const char* profile = std::getenv("PROFILE_MIXED");
  if (profile != nullptr && std::string(profile) == "1") {
    (void)cudaProfilerStart();
    timed_steps(*be, 0, 1, with_chunk, advance);
    (void)cudaProfilerStop();
  }
}

std::vector<int32_t> parse_list(const std::string& csv) {
  std::vector<int32_t> values;
  std::stringstream ss(csv);
  for (std::string item; std::getline(ss, item, ',');) values.push_back(std::stoi(item));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [BATCHES] [PROMPT_LEN]\n", argv[0]);
    return 2;
  }
  try {
    const std::vector<int32_t> batches = parse_list(argc > 2 ? argv[2] : "1,8,64,256");
    const int32_t prompt_len = argc > 3 ? std::stoi(argv[3]) : 128;
    const int32_t prefill_tokens = argc > 4 ? std::stoi(argv[4]) : 4096;
    auto model = autoglm::load_model_directory(argv[1]);
    if (const char* mixed = std::getenv("MIXED_STEP"); mixed != nullptr) {
      const std::vector<int32_t> m = parse_list(mixed);
      if (m.size() != 3) throw std::runtime_error("MIXED_STEP is DECODE,CHUNK,PROMPT_LEN");
      mixed_bench(*model, m[0], m[1], m[2]);
      return 0;
    }
    if (prefill_tokens > 0) prefill_bench(*model, prefill_tokens);
    for (const bool graphs : {false, true}) run(*model, graphs, batches, prompt_len);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_decode_bench: %s\n", e.what());
    return 1;
  }
}
