// One sequence's generation loop over a Backend: chunked prefill, then decode one token per
// step, with a Sampler, a StopChecker and a block table from a KvBlockPool. It keeps the KV of
// the tokens it fed, so the next call reuses the longest common prefix with the new prompt
// (a multi-turn chat re-prefills only the new turn). Shared by `autoglm generate` and
// `autoglm chat`; the batched engine will reuse Sampler/StopChecker/KvBlockPool directly.
// Thread ownership: a SequenceGenerator and its backend are driven by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "runtime/kv_block_pool.h"
#include "runtime/sampler.h"
#include "runtime/stop_checker.h"
#include "tokenizer/tokenizer.h"

namespace autoglm {

struct GeneratedToken {
  int32_t id = 0;
  std::optional<Logprobs> logprobs;
};

struct GenerationResult {
  std::vector<GeneratedToken> tokens;  // every sampled token, including a final stop token
  std::string text;                    // exactly what was streamed
  FinishReason finish_reason = FinishReason::kLength;
  std::optional<std::string> stop;  // the stop string or "token:<id>" that matched
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens whose KV was reused, not recomputed
  double prefill_ms = 0.0;           // prompt forward passes up to the first token's logits
  double decode_ms = 0.0;            // everything after the first token
};

struct GeneratorOptions {
  int64_t max_context = 0;      // model's max_position_embeddings (0: unbounded)
  int32_t prefill_chunk = 512;  // prompt tokens per forward pass
};

class SequenceGenerator {
 public:
  // All references must outlive the generator. `pool` must match the backend's kv_pool().
  SequenceGenerator(Backend& backend, KvBlockPool& pool, const Tokenizer& tokenizer,
                    std::vector<int64_t> eos_token_ids, GeneratorOptions options);

  using TextCallback = std::function<void(std::string_view)>;
  // Generates a continuation of `prompt`, calling `on_text` with each piece as it becomes
  // final. Throws Error(kInvalidArgument) for bad parameters or a prompt + max_tokens that
  // exceeds the context, and Error(kResourceExhausted) when the KV pool cannot hold it.
  GenerationResult generate(std::span<const int32_t> prompt, const SamplingParams& sampling,
                            const StopParams& stop, const TextCallback& on_text);

  // Forgets the cached prefix (the blocks stay with this sequence).
  void reset() { cached_.clear(); }
  std::span<const int32_t> cached_tokens() const { return cached_; }

 private:
  void check_fits(size_t prompt_tokens, int32_t max_tokens) const;
  // Feeds `ids` at the end of the cached sequence; returns logits of the last one if asked.
  void feed(std::span<const int32_t> ids, bool want_logits);

  Backend& backend_;
  KvBlockPool& pool_;
  const Tokenizer& tokenizer_;
  std::vector<int64_t> eos_token_ids_;
  GeneratorOptions options_;
  SequenceBlocks blocks_;
  std::vector<int32_t> cached_;  // tokens whose K/V sit at positions 0..size-1
  std::vector<float> logits_;
  std::vector<int32_t> positions_, slots_;
};

}  // namespace autoglm
