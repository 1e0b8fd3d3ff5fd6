// Strict base64url (RFC 4648 section 5) for JWS compact serialization: the JWT verifier
// decodes untrusted token segments with it, and tests and tools encode with it.
// Thread ownership: pure functions, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace autoglm::security {

// Unpadded base64url of `bytes`.
std::string base64url_encode(std::string_view bytes);

// Decodes unpadded base64url. Returns nullopt for anything that is not the canonical encoding
// of some byte string: '=' padding, characters outside [A-Za-z0-9_-], a length of 4n+1, or
// non-zero bits left over in the last character (so every byte string has exactly one
// accepted encoding and a token cannot be altered without changing the signed bytes' meaning).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace autoglm::security
