// The random dataset and the arrival schedule; see workload.h. Thread ownership: see workload.h.
#include "workload.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace autoglm::bench {
namespace {

// Separate streams for lengths, ids and arrivals, so that changing one option (say the
// request rate) leaves the prompts of the same seed unchanged.
constexpr uint64_t kLengthStream = 0x6c656e67;
constexpr uint64_t kTokenStream = 0x746f6b65;
constexpr uint64_t kArrivalStream = 0x61727269;

std::mt19937_64 make_rng(uint32_t seed, uint64_t stream) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(stream)};
  return std::mt19937_64(seq);
}

void check_dataset_options(const RandomDatasetOptions& o) {
  if (o.num_prompts < 1) fail(ErrorCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (o.input_len < 1 || o.output_len < 1) {
    fail(ErrorCode::kInvalidArgument, "--input-len and --output-len must be >= 1");
  }
  if (!(o.range_ratio >= 0.0 && o.range_ratio < 1.0)) {
    fail(ErrorCode::kInvalidArgument, "--range-ratio must be in [0, 1)");
  }
}

// Draws (input, output) lengths for every prompt.
std::vector<std::pair<int32_t, int32_t>> draw_lengths(const RandomDatasetOptions& o) {
  std::mt19937_64 rng = make_rng(o.seed, kLengthStream);
  const LengthRange in = length_range(o.input_len, o.range_ratio);
  const LengthRange out = length_range(o.output_len, o.range_ratio);
  std::uniform_int_distribution<int32_t> in_dist(in.low, in.high), out_dist(out.low, out.high);
  std::vector<std::pair<int32_t, int32_t>> lengths(static_cast<size_t>(o.num_prompts));
  for (auto& [input, output] : lengths) {
    input = in_dist(rng);
    output = out_dist(rng);
  }
  return lengths;
}

}  // namespace

LengthRange length_range(int32_t len, double range_ratio) {
  const double low = std::floor(len * (1.0 - range_ratio));
  const double high = std::ceil(len * (1.0 + range_ratio));
  return {std::max<int32_t>(1, static_cast<int32_t>(low)),
          std::max<int32_t>(1, static_cast<int32_t>(high))};
}

std::vector<BenchPrompt> random_token_prompts(const RandomDatasetOptions& o) {
  check_dataset_options(o);
  if (o.vocab_size < 1) fail(ErrorCode::kInvalidArgument, "--vocab-size must be >= 1");
  std::mt19937_64 rng = make_rng(o.seed, kTokenStream);
  std::uniform_int_distribution<int32_t> token(0, o.vocab_size - 1);
  std::vector<BenchPrompt> prompts;
  for (const auto& [input, output] : draw_lengths(o)) {
    BenchPrompt p;
    p.token_ids.resize(static_cast<size_t>(input));
    for (int32_t& id : p.token_ids) id = token(rng);
    p.input_tokens = input;
    p.output_tokens = output;
    prompts.push_back(std::move(p));
  }
  return prompts;
}

namespace {

// Ids a prompt may contain. Preferably "stable words": tokens that decode to a space and
// ASCII letters and encode back to themselves alone. Pre-tokenizers split text before each
// " word", so any sequence of them re-encodes to exactly the same ids and the prompt has
// exactly the drawn length. A tokenizer with too few of them gets every ordinary id, and
// the length is then adjusted by re-encoding (see text_prompt).
std::vector<uint32_t> prompt_id_pool(const Tokenizer& tokenizer) {
  std::vector<uint32_t> ordinary, stable;
  for (uint32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.is_special(id) || !tokenizer.id_to_token(id)) continue;
    ordinary.push_back(id);
    const std::string text = tokenizer.decode(std::span<const uint32_t>(&id, 1));
    if (text.size() < 2 || text[0] != ' ') continue;
    const bool letters = std::all_of(text.begin() + 1, text.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    });
    if (letters && tokenizer.encode(text) == std::vector<uint32_t>{id}) stable.push_back(id);
  }
  constexpr size_t kMinStableWords = 64;
  if (stable.size() >= kMinStableWords) return stable;
  if (ordinary.empty())
    fail(ErrorCode::kTokenizer, "the tokenizer has no ordinary (non-special) ids");
  return ordinary;
}

// Text that encodes to `target` tokens (or as close as a few rounds of adjustment get).
BenchPrompt text_prompt(const Tokenizer& tokenizer, const std::vector<uint32_t>& pool,
                        std::mt19937_64& rng, int32_t target) {
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::vector<uint32_t> ids(static_cast<size_t>(target));
  for (uint32_t& id : ids) id = pool[pick(rng)];
  std::string text = tokenizer.decode(ids);
  std::vector<uint32_t> encoded = tokenizer.encode(text);
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds && encoded.size() != ids.size(); ++round) {
    // Decoding and re-encoding merges or splits tokens; trim or pad the re-encoded ids.
    while (encoded.size() < static_cast<size_t>(target)) encoded.push_back(pool[pick(rng)]);
    encoded.resize(static_cast<size_t>(target));
    ids = encoded;
    text = tokenizer.decode(ids);
    encoded = tokenizer.encode(text);
  }
  BenchPrompt p;
  p.text = std::move(text);
  p.input_tokens = static_cast<int32_t>(encoded.size());
  return p;
}

}  // namespace

std::vector<BenchPrompt> random_text_prompts(const RandomDatasetOptions& o,
                                             const Tokenizer& tokenizer) {
  check_dataset_options(o);
  const std::vector<uint32_t> pool = prompt_id_pool(tokenizer);
  std::mt19937_64 rng = make_rng(o.seed, kTokenStream);
  std::vector<BenchPrompt> prompts;
  for (const auto& [input, output] : draw_lengths(o)) {
    BenchPrompt p = text_prompt(tokenizer, pool, rng, input);
    p.output_tokens = output;
    prompts.push_back(std::move(p));
  }
  return prompts;
}

std::vector<double> arrival_schedule(int32_t count, double request_rate, double burstiness,
                                     uint32_t seed) {
  if (count < 0) fail(ErrorCode::kInvalidArgument, "negative request count");
  std::vector<double> times(static_cast<size_t>(count), 0.0);
  if (!(request_rate > 0) || std::isinf(request_rate)) return times;
  if (!(burstiness > 0) || std::isinf(burstiness)) {
    fail(ErrorCode::kInvalidArgument, "--burstiness must be a positive number");
  }
  std::mt19937_64 rng = make_rng(seed, kArrivalStream);
  // Gamma(shape k, scale 1/(rate k)) has mean 1/rate; k = 1 is the exponential distribution.
  std::gamma_distribution<double> gap(burstiness, 1.0 / (request_rate * burstiness));
  double t = 0;
  for (size_t i = 1; i < times.size(); ++i) {
    t += gap(rng);
    times[i] = t;
  }
  return times;
}

}  // namespace autoglm::bench
