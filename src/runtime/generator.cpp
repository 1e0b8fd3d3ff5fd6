// See generator.h.
#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

SequenceGenerator::SequenceGenerator(Backend& backend, KvBlockPool& pool,
                                     const Tokenizer& tokenizer, std::vector<int64_t> eos_token_ids,
                                     GeneratorOptions options)
    : backend_(backend),
      pool_(pool),
      tokenizer_(tokenizer),
      eos_token_ids_(std::move(eos_token_ids)),
      options_(options),
      blocks_(pool),
      logits_(static_cast<size_t>(backend.vocab_size())) {
  if (options_.prefill_chunk <= 0) fail(ErrorCode::kInvalidArgument, "prefill chunk must be > 0");
}

void SequenceGenerator::check_fits(size_t prompt_tokens, int32_t max_tokens) const {
  const int64_t total = static_cast<int64_t>(prompt_tokens) + max_tokens;
  const std::string what = "prompt (" + std::to_string(prompt_tokens) + " tokens) + max_tokens (" +
                           std::to_string(max_tokens) + ")";
  if (options_.max_context > 0 && total > options_.max_context) {
    fail(ErrorCode::kInvalidArgument, what + " exceeds the model context of " +
                                          std::to_string(options_.max_context) + " tokens");
  }
  const KvPoolShape shape = pool_.shape();
  const int64_t pool_tokens = static_cast<int64_t>(shape.num_blocks) * shape.block_size;
  if (pool_.blocks_for_tokens(total) > shape.num_blocks) {
    fail(ErrorCode::kInvalidArgument,
         what + " needs " + std::to_string(pool_.blocks_for_tokens(total)) + " KV blocks of " +
             std::to_string(shape.block_size) + " tokens, but the KV cache holds " +
             std::to_string(shape.num_blocks) + " blocks (" + std::to_string(pool_tokens) +
             " tokens); raise --kv-cache-mb or lower max_tokens");
  }
}

void SequenceGenerator::feed(std::span<const int32_t> ids, bool want_logits) {
  const std::span<const int32_t> table = blocks_.table();
  size_t start = 0;
  while (start < ids.size()) {
    const size_t n = std::min(ids.size() - start, static_cast<size_t>(options_.prefill_chunk));
    const int32_t first = static_cast<int32_t>(cached_.size());
    positions_.resize(n);
    slots_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      positions_[i] = first + static_cast<int32_t>(i);
      slots_[i] = blocks_.slot(positions_[i]);
    }
    const bool last_chunk = start + n == ids.size();
    const int32_t count = static_cast<int32_t>(n);
    const std::vector<int32_t> seq_start{0, count}, context{first + count}, rows{count - 1};
    ForwardBatch batch{
        ids.subspan(start, n),
        positions_,
        seq_start,
        context,
        table,
        static_cast<int32_t>(table.size()),
        slots_,
        want_logits && last_chunk ? std::span<const int32_t>(rows) : std::span<const int32_t>()};
    backend_.forward(batch, logits_);
    cached_.insert(cached_.end(), ids.begin() + static_cast<std::ptrdiff_t>(start),
                   ids.begin() + static_cast<std::ptrdiff_t>(start + n));
    start += n;
  }
}

GenerationResult SequenceGenerator::generate(std::span<const int32_t> prompt,
                                             const SamplingParams& sampling, const StopParams& stop,
                                             const TextCallback& on_text) {
  Sampler sampler(sampling, backend_.vocab_size());
  StopChecker stopper(tokenizer_, stop, eos_token_ids_);
  if (prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  check_fits(prompt.size(), stop.max_tokens);
  blocks_.reserve_tokens(static_cast<int64_t>(prompt.size()) + stop.max_tokens);

  // Reuse the cached prefix, but always recompute the last prompt token: its logits are needed.
  const auto mismatch = std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end());
  const size_t common =
      std::min(static_cast<size_t>(mismatch.first - cached_.begin()), prompt.size() - 1);
  cached_.resize(common);

  GenerationResult result;
  result.prompt_tokens = static_cast<int32_t>(prompt.size());
  result.cached_prompt_tokens = static_cast<int32_t>(common);
  sampler.add_prompt(prompt);
  const auto prefill_start = std::chrono::steady_clock::now();
  feed(prompt.subspan(common), /*want_logits=*/true);
  result.prefill_ms = ms_since(prefill_start);

  const auto decode_start = std::chrono::steady_clock::now();
  while (true) {
    SampledToken sampled = sampler.sample(logits_);
    result.tokens.push_back({sampled.id, std::move(sampled.logprobs)});
    StopChecker::Step step = stopper.push(sampled.id);
    if (!step.text.empty()) {
      result.text += step.text;
      if (on_text) on_text(step.text);
    }
    if (step.finish) {
      result.finish_reason = *step.finish;
      result.stop = std::move(step.stop);
      break;
    }
    const int32_t next[1] = {sampled.id};
    feed(next, /*want_logits=*/true);
  }
  result.decode_ms = ms_since(decode_start);
  return result;
}

}  // namespace autoglm
