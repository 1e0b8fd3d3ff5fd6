// Added tokens (tokenizer.json "added_tokens"): the byte trie that finds them in text with
// HF's leftmost-longest rule and single_word / lstrip / rstrip handling, and the policy that
// decides where special tokens may be recognised (prompt-injection defence).
// Thread ownership: immutable after construction; any thread may call split().
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::tok {

struct AddedToken {
  uint32_t id = 0;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// One piece of a split: plain text [begin, end), or an added token covering [begin, end).
struct AddedSplit {
  size_t begin = 0;
  size_t end = 0;
  int64_t token_id = -1;  // -1: plain text to pre-tokenize
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `tokens` must outlive the matcher.
  explicit AddedTokenMatcher(std::vector<const AddedToken*> tokens);

  bool empty() const { return tokens_.empty(); }

  // Splits `text` on the added tokens. `special_allowed(begin, end)` says whether a special
  // token may be recognised over [begin, end) of `text`; non-special tokens always are.
  void split(std::string_view text, const std::function<bool(size_t, size_t)>& special_allowed,
             std::vector<AddedSplit>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                 // index into tokens_ if terminal
  };
  int32_t child(int32_t node, uint8_t byte) const;
  // The longest allowed token starting at `pos`, as an index into tokens_, or -1.
  int32_t longest_match(std::string_view text, size_t pos,
                        const std::function<bool(size_t, size_t)>& special_allowed) const;

  std::vector<const AddedToken*> tokens_;
  std::vector<Node> nodes_;
  std::array<int32_t, 256> root_children_ = filled_root();
  static std::array<int32_t, 256> filled_root() {
    std::array<int32_t, 256> a;
    a.fill(-1);
    return a;
  }
};

}  // namespace autoglm::tok
