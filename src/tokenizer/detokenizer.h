// Streaming detokenizer: turns generated ids into text pieces that are safe to send at once.
// Bytes of a UTF-8 character split across tokens are held back until it completes; bytes
// that can never complete become U+FFFD exactly as Tokenizer::decode does, so the
// concatenation of all pieces (plus finish()) equals decode(all ids).
// Thread ownership: one per request stream, used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace autoglm {

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive the detokenizer.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Adds one id; returns the text that became final (possibly empty).
  std::string push(uint32_t id);
  // Flushes held-back bytes at the end of the stream (as U+FFFD if incomplete).
  std::string finish();

  // Bytes currently held back (for tests and diagnostics).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  bool emitted_any_token_ = false;
  std::string pending_;  // undecoded bytes that may still be the start of a character
};

}  // namespace autoglm
