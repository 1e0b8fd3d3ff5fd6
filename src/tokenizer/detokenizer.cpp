// See detokenizer.h.
#include "tokenizer/detokenizer.h"

#include "tokenizer/byte_level.h"

namespace autoglm {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(uint32_t id) {
  const auto bytes = tokenizer_->decoder_bytes(id);
  if (!bytes) return {};  // decode() skips unknown ids too
  if (skip_special_tokens_ && tokenizer_->is_special(id)) return {};
  if (tokenizer_->decoder_joins_with_space()) {
    // Without a decoder, tokens are whole UTF-8 strings joined by spaces.
    std::string out = emitted_any_token_ ? " " : "";
    emitted_any_token_ = true;
    return out + std::string(*bytes);
  }
  emitted_any_token_ = true;
  pending_ += *bytes;
  // Everything except a truncated (still completable) trailing sequence is final.
  const size_t keep = tok::incomplete_utf8_suffix(pending_);
  std::string out;
  tok::append_utf8_lossy(out, std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string IncrementalDetokenizer::finish() {
  std::string out;
  tok::append_utf8_lossy(out, pending_);
  pending_.clear();
  return out;
}

}  // namespace autoglm
