// See error.h.
#include "core/error.h"

namespace autoglm {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kInvalidModel:
      return "invalid_model";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kTokenizer:
      return "tokenizer_error";
    case ErrorCode::kTemplate:
      return "template_error";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

void fail(ErrorCode code, std::string message) {
  throw Error(code, std::move(message));
}

}  // namespace autoglm
