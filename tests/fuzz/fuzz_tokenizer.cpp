// libFuzzer target for the tokenizer. The first input byte picks the mode:
//   even: the rest is text for a fixed small valid tokenizer (merges, special and non-special
//         added tokens, lstrip/rstrip/single_word, NFC, Split regex): encode under every
//         special-token policy, decode, and stream-decode; checks decode(encode(x)) == NFC(x)
//         is not required, but the streamed pieces must equal decode.
//   odd:  the rest is "<tokenizer.json>\0<text>": load (errors allowed) + encode + decode.
// Thread ownership: libFuzzer's thread.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using autoglm::Tokenizer;

std::string fixed_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  uint32_t next = 0;
  for (int b = 0; b < 256; ++b) {
    vocab[autoglm::tok::bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = next++;
  }
  const char* merges[] = {"Ġ t", "h e", "Ġt he", "i n", "ä ½", "ä½ ł", "Ġ Ġ", "ĠĠ ĠĠ"};
  nlohmann::json merge_list = nlohmann::json::array();
  for (const char* m : merges) {
    const std::string s = m;
    const auto sp = s.find(' ');
    const std::string merged = s.substr(0, sp) + s.substr(sp + 1);
    if (!vocab.contains(merged)) vocab[merged] = next++;
    merge_list.push_back(s);
  }
  nlohmann::json added = nlohmann::json::array();
  const auto add = [&](const char* content, bool special, bool lstrip, bool rstrip, bool single) {
    added.push_back({{"id", next++},
                     {"content", content},
                     {"special", special},
                     {"lstrip", lstrip},
                     {"rstrip", rstrip},
                     {"single_word", single},
                     {"normalized", false}});
  };
  add("<|im_start|>", true, false, false, false);
  add("<|im_end|>", true, false, false, false);
  add("<|im", true, false, false, false);
  add("<mask>", true, true, true, false);
  add("tool", false, false, false, true);
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  return j.dump();
}

void exercise(const Tokenizer& tok, std::string_view text) {
  for (const auto policy : {autoglm::SpecialTokenPolicy::kAll, autoglm::SpecialTokenPolicy::kNone,
                            autoglm::SpecialTokenPolicy::kExceptUntrusted}) {
    const autoglm::ByteRange range{text.size() / 3, text.size() / 3 * 2};
    autoglm::EncodeOptions opts{policy, std::span(&range, 1),
                                policy == autoglm::SpecialTokenPolicy::kAll};
    std::vector<uint32_t> ids;
    try {
      ids = tok.encode(text, opts);
    } catch (const autoglm::Error&) {
      return;  // invalid UTF-8 input is rejected, never crashes
    }
    for (const bool skip : {false, true}) {
      const std::string whole = tok.decode(ids, skip);
      autoglm::IncrementalDetokenizer stream(tok, skip);
      std::string pieces;
      for (const uint32_t id : ids) pieces += stream.push(id);
      pieces += stream.finish();
      if (pieces != whole) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const Tokenizer fixed = Tokenizer::from_json_text(fixed_tokenizer_json(), "fixed.json");
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    exercise(fixed, rest);
    return 0;
  }
  const size_t nul = rest.find('\0');
  const std::string_view json = rest.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? "" : rest.substr(nul + 1);
  try {
    const Tokenizer tok = Tokenizer::from_json_text(json, "fuzz.json");
    exercise(tok, text);
  } catch (const autoglm::Error&) {
  }
  return 0;
}
