// Pre-tokenizers from tokenizer.json ("pre_tokenizer"): Split (PCRE2 regex or literal string,
// with HF's delimiter behaviours and invert), ByteLevel (optional prefix space and the GPT-2
// regex) and Sequence. Produces the pieces ("words") that the BPE model encodes.
// PCRE2 runs with UTF + UCP (+ JIT) to reproduce the Oniguruma semantics HF uses.
// Thread ownership: immutable after construction; any thread may call pre_tokenize.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoglm::tok {

// A compiled PCRE2 pattern (UTF, UCP, JIT when available).
class Regex {
 public:
  // `literal` compiles `pattern` as a literal string. Errors name `source`.
  Regex(std::string_view pattern, bool literal, std::string_view source);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends [start, end) byte offsets of the successive non-overlapping matches in `text`
  // (Oniguruma iteration: after an empty match, the search resumes one character later).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  std::string source_;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // Builds from the "pre_tokenizer" JSON value (null: the whole text is one piece).
  // Unsupported types throw Error(kTokenizer) naming `source` and the type.
  static PreTokenizer from_json(const nlohmann::json& j, std::string_view source);

  // True when the last step is ByteLevel (pieces are raw bytes to byte-level encode).
  bool ends_with_byte_level() const;

  // Splits `text` into pieces, appended to `out`. Pieces view `text` or strings appended to
  // `storage` (a deque, so earlier pieces stay valid).
  void pre_tokenize(std::string_view text, std::vector<std::string_view>& out,
                    std::deque<std::string>& storage) const;

 private:
  struct Step {
    enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
    std::shared_ptr<const Regex> regex;  // Split pattern, or the GPT-2 regex for ByteLevel
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;
  };
  void append_from_json(const nlohmann::json& j, std::string_view source, int depth);
  static void apply_step(const Step& step, std::string_view piece,
                         std::vector<std::string_view>& out, std::deque<std::string>& storage);

  std::vector<Step> steps_;
};

}  // namespace autoglm::tok
