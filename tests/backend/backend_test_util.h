// Test helpers for backends: loading a fixture model with its transformers truth, and building
// ragged ForwardBatches for sequences whose KV blocks the test chooses.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model_dir.h"

namespace autoglm::test {

struct ReferencePrompt {
  std::string name;
  std::vector<int32_t> ids;
  std::vector<int32_t> greedy;  // transformers' 32-token greedy continuation
  std::vector<float> logits;    // [ids.size(), vocab], fp32
};

struct ReferenceModel {
  std::string name;
  std::unique_ptr<LoadedModel> model;
  std::vector<ReferencePrompt> prompts;
  int32_t vocab() const { return static_cast<int32_t>(model->config.vocab_size); }
};

// Every tests/fixtures/models/<name>/ that has a reference.json, sorted by name.
std::vector<std::filesystem::path> reference_model_dirs();
ReferenceModel load_reference_model(const std::filesystem::path& dir);

// One sequence's part of a step: `ids` at positions first_pos.., KV blocks `blocks`.
struct SeqStep {
  std::vector<int32_t> ids;
  int32_t first_pos = 0;
  std::vector<int32_t> blocks;
};

// The ragged batch of `seqs`, every token a logits row.
ForwardBatchArrays make_batch(const Backend& backend, const std::vector<SeqStep>& seqs);

// Runs one ragged batch; returns the logits of every token, [n_tokens, vocab].
std::vector<float> run_step(Backend& backend, const std::vector<SeqStep>& seqs);

// How greedy_steps feeds each step's tokens to the next step.
enum class StepFeed {
  kHostTokens,          // the collected ids, each step collected before the next
  kSampleRows,          // previous_sample_token(row), each step collected before the next
  kSampleRowsPipelined  // previous_sample_token(row), submitted before the previous is collected
};

// Greedy-decodes `steps` tokens for every prompt, all in one batch per step, through
// submit_sample / collect_sample (overlapped scheduling's backend contract). KV blocks from 0.
std::vector<std::vector<int32_t>> greedy_steps(Backend& backend,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               int steps, StepFeed feed);

// Block ids for `tokens` tokens: contiguous from `base`, or scattered over the pool.
std::vector<int32_t> contiguous_blocks(int32_t tokens, int32_t block_size, int32_t base);
std::vector<int32_t> scattered_blocks(int32_t tokens, int32_t block_size, int32_t seed,
                                      int32_t pool_blocks);

// max |a - b| over n values, and the same relative to max |b| (row-wise scale).
double max_abs_diff(const float* a, const float* b, size_t n);
double max_rel_diff(const float* a, const float* b, size_t n);

int32_t argmax(const float* row, int32_t n);

}  // namespace autoglm::test
