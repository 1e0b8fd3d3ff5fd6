// Hugging Face tokenizer.json loader and byte-level BPE encoder/decoder (GLM-4, glm-4-9b-chat-hf,
// Qwen2/3, Llama-3). Pipeline: added-token split (with the special-token policy), normalizer,
// pre-tokenizer, BPE, post-processor; decode runs the ByteLevel decoder with HF's lossy UTF-8.
// Thread ownership: a Tokenizer is immutable after load (its word cache is internally locked)
// and may be shared by any number of threads; copies share the same loaded data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/byte_range.h"

namespace autoglm {

// Where special added tokens (special=true) may be recognised in the input text.
// Non-special added tokens are always recognised, as in HF.
enum class SpecialTokenPolicy {
  kNone,             // nowhere: special-token strings are encoded as plain text (the default)
  kAll,              // everywhere (HF's default behaviour)
  kExceptUntrusted,  // everywhere except in a match touching EncodeOptions::untrusted
};

struct EncodeOptions {
  SpecialTokenPolicy special = SpecialTokenPolicy::kNone;
  // Ranges of user-supplied content (e.g. from the chat-template renderer); only read with
  // kExceptUntrusted. Need not be sorted; each must lie within the text.
  std::span<const ByteRange> untrusted;
  // Apply the post-processor (e.g. Llama-3's BOS), like HF's add_special_tokens=True.
  bool add_special_tokens = false;
};

class Tokenizer {
 public:
  // Largest tokenizer.json accepted.
  static constexpr size_t kMaxFileBytes = 256u << 20;

  // Loads `path`, a tokenizer.json file or a model directory containing one.
  // Throws autoglm::Error (kNotFound, kTokenizer) naming the file and the field at fault.
  static Tokenizer load(const std::string& path);
  // Parses tokenizer.json text; `source` names it in error messages.
  static Tokenizer from_json_text(std::string_view json, std::string_view source);

  // Encodes UTF-8 text. Invalid UTF-8 or a bad untrusted range → Error(kTokenizer).
  std::vector<uint32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;

  // HF's decode: ids unknown to the tokenizer are skipped; invalid UTF-8 becomes U+FFFD.
  std::string decode(std::span<const uint32_t> ids, bool skip_special_tokens = false) const;

  // Added tokens first, then the vocabulary (byte-level spelling, as in tokenizer.json).
  std::optional<uint32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(uint32_t id) const;
  bool is_special(uint32_t id) const;
  // One past the largest token id (vocabulary and added tokens).
  size_t vocab_size() const;

  // For the incremental detokenizer: the bytes the decoder produces for `id` before the
  // final UTF-8 conversion (nullopt for unknown ids), and whether the decoder joins tokens
  // with spaces (no decoder configured) instead of concatenating bytes.
  std::optional<std::string_view> decoder_bytes(uint32_t id) const;
  bool decoder_joins_with_space() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace autoglm
