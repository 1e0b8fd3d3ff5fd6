// Text normalizers from tokenizer.json ("normalizer"): null, NFC, NFD, NFKC, NFKD and
// Sequence of those, applied (via utf8proc) to the text between added tokens before
// pre-tokenization. Thread ownership: immutable after construction; any thread may call.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_util.h"

namespace autoglm::tok {

class Normalizer {
 public:
  // Builds from the "normalizer" JSON value; a null value gives an identity normalizer.
  // Unsupported types throw Error(kTokenizer) naming `source` and the type.
  static Normalizer from_json(const nlohmann::json& j, std::string_view source);

  bool is_identity() const { return forms_.empty(); }
  // `text` must be valid UTF-8.
  std::string normalize(std::string_view text) const;

 private:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };
  void append_from_json(const nlohmann::json& j, std::string_view source, int depth);
  std::vector<Form> forms_;
};

}  // namespace autoglm::tok
