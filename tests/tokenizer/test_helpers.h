// Small tokenizer.json builders shared by the tokenizer unit tests. Thread ownership: test thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::test {

// A byte-level BPE over all 256 bytes plus `extra` merged tokens built by `merges` ("a b"
// strings in byte-level spelling), with the GPT-2-free pre-tokenizer Split(\s+|\S+).
inline nlohmann::json tiny_tokenizer_json(const std::vector<std::string>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  uint32_t next = 0;
  for (int b = 0; b < 256; ++b) {
    vocab[tok::bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = next++;
  }
  for (const auto& m : merges) {
    const auto space = m.find(' ');
    const std::string merged = m.substr(0, space) + m.substr(space + 1);
    if (!vocab.contains(merged)) vocab[merged] = next++;
  }
  nlohmann::json j;
  j["version"] = "1.0";
  j["added_tokens"] = nlohmann::json::array();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern", {{"Regex", R"(\s+|\S+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", nullptr}};
  return j;
}

inline void add_token(nlohmann::json& j, uint32_t id, const std::string& content, bool special,
                      bool lstrip = false, bool rstrip = false, bool single_word = false) {
  j["added_tokens"].push_back({{"id", id},
                               {"content", content},
                               {"special", special},
                               {"lstrip", lstrip},
                               {"rstrip", rstrip},
                               {"single_word", single_word},
                               {"normalized", false}});
}

inline Tokenizer load(const nlohmann::json& j) {
  return Tokenizer::from_json_text(j.dump(), "test.json");
}

inline std::string fixture(const std::string& name) {
  return std::string(AUTOGLM_FIXTURES_DIR) + "/tokenizers/" + name;
}

}  // namespace autoglm::test
