// Error type shared by every subsystem. Load, tokenizer and template failures throw
// autoglm::Error with a category and a message that names the file and the tensor/field at
// fault; callers at the edge (CLI, server) turn it into one clear line or an HTTP error.
// Thread ownership: none (value type).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace autoglm {

enum class ErrorCode {
  kInvalidArgument,    // caller passed something malformed
  kNotFound,           // a file, tensor or key that must exist does not
  kInvalidModel,       // a model file lies or is inconsistent
  kUnsupported,        // valid, but not something this build handles (dtype, architecture)
  kTokenizer,          // tokenizer.json malformed, or text cannot be encoded
  kTemplate,           // chat template parse/render error or limit hit
  kResourceExhausted,  // a configured limit or memory budget was hit
  kInternal,
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void fail(ErrorCode code, std::string message);

}  // namespace autoglm
