// JSON parsing with limits for untrusted files and request bodies: a nesting-depth cap
// (deeply nested input must not exhaust the stack) and UTF-8 validation, with errors that name
// the source. Values keep key order (ordered_json), as chat templates render tools in order.
// Thread ownership: none (pure functions).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace autoglm {

using Json = nlohmann::ordered_json;

inline constexpr int kDefaultMaxJsonDepth = 128;

// Parses `text`; on failure throws Error(code, "<source>: <reason>").
Json parse_json_limited(std::string_view text, std::string_view source,
                        int max_depth = kDefaultMaxJsonDepth,
                        ErrorCode code = ErrorCode::kInvalidModel);

}  // namespace autoglm
