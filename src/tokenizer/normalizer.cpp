// See normalizer.h.
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"

namespace autoglm::tok {
namespace {

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j, std::string_view source) {
  Normalizer n;
  n.append_from_json(j, source, 0);
  return n;
}

void Normalizer::append_from_json(const nlohmann::json& j, std::string_view source, int depth) {
  if (j.is_null()) return;
  const std::string where = std::string(source) + ": normalizer";
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    fail(ErrorCode::kTokenizer, where + ": expected an object with a string \"type\"");
  }
  if (depth > 8) fail(ErrorCode::kTokenizer, where + ": Sequence nested too deeply");
  const std::string type = j["type"].get<std::string>();
  if (forms_.size() >= 64) fail(ErrorCode::kTokenizer, where + ": more than 64 steps");
  if (type == "NFC")
    forms_.push_back(Form::kNFC);
  else if (type == "NFD")
    forms_.push_back(Form::kNFD);
  else if (type == "NFKC")
    forms_.push_back(Form::kNFKC);
  else if (type == "NFKD")
    forms_.push_back(Form::kNFKD);
  else if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      fail(ErrorCode::kTokenizer, where + ": Sequence without a \"normalizers\" array");
    }
    for (const auto& child : j["normalizers"]) append_from_json(child, source, depth + 1);
  } else {
    fail(ErrorCode::kTokenizer, where + ": unsupported normalizer type \"" + type + "\"");
  }
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string current(text);
  for (const Form form : forms_) {
    // Unicode normalization never changes pure ASCII.
    if (is_ascii(current)) break;
    int options = UTF8PROC_STABLE;
    switch (form) {
      case Form::kNFC:
        options |= UTF8PROC_COMPOSE;
        break;
      case Form::kNFD:
        options |= UTF8PROC_DECOMPOSE;
        break;
      case Form::kNFKC:
        options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        break;
      case Form::kNFKD:
        options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        break;
    }
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(current.data()),
                     static_cast<utf8proc_ssize_t>(current.size()), &out,
                     static_cast<utf8proc_option_t>(options));
    if (n < 0) {
      fail(ErrorCode::kTokenizer,
           std::string("normalizer: utf8proc failed: ") + utf8proc_errmsg(n));
    }
    current.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }
  return current;
}

}  // namespace autoglm::tok
