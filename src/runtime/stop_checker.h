// Stopping for one output stream: stop token ids (the model's EOS ids unless ignore_eos, plus
// the user's), stop strings matched on the detokenized text across token boundaries, and
// max_tokens. While streaming, text that could still be the start of a stop string is held
// back; a matched stop string and everything after it are never emitted. A stop token's own
// text is not emitted either (EOS is usually special and decodes to nothing anyway), but it is
// counted as a completion token, as OpenAI does.
// Thread ownership: one per request stream, used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/sampling_params.h"
#include "tokenizer/detokenizer.h"

namespace autoglm {

enum class FinishReason { kStop, kLength };
std::string_view finish_reason_name(FinishReason reason);  // "stop" / "length"

// Finds stop strings in a stream of text pieces. Holds back the longest tail of the text seen
// so far that is a proper prefix of some stop string.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  struct Result {
    std::string text;                     // safe to emit now
    std::optional<size_t> matched_index;  // which stop string ended the stream
  };
  // Adds a piece. After a match the matcher is spent: further pushes return nothing.
  Result push(std::string_view piece);
  // End of stream without a match: returns the held-back text.
  std::string flush();

  size_t held_bytes() const { return held_.size(); }

 private:
  size_t hold_back_length() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
};

// Drives the detokenizer and the stop rules for one request's generated tokens.
class StopChecker {
 public:
  // `tokenizer` must outlive the checker. Throws Error(kInvalidArgument) for bad params.
  StopChecker(const Tokenizer& tokenizer, const StopParams& params,
              std::span<const int64_t> eos_token_ids);

  struct Step {
    std::string text;                    // text to emit for this token (may be empty)
    std::optional<FinishReason> finish;  // set when this token ends the stream
    std::optional<std::string> stop;     // the stop string or "token:<id>" that matched
  };
  // Feeds one generated token. Must not be called after a Step with `finish` set.
  Step push(int32_t id);

  int32_t tokens() const { return tokens_; }
  bool finished() const { return finished_; }

 private:
  bool is_stop_token(int32_t id) const;
  Step finish(Step step, FinishReason reason);

  StopParams params_;
  std::vector<int32_t> stop_ids_;
  IncrementalDetokenizer detok_;
  StopStringMatcher matcher_;
  int32_t tokens_ = 0;
  bool finished_ = false;
};

}  // namespace autoglm
