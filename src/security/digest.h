// Hex encoding and SHA-256 digests (OpenSSL EVP), shared by the audit chain, manifests and key
// fingerprints.
// Thread ownership: pure functions, any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace autoglm::security {

std::string to_hex(std::span<const uint8_t> bytes);  // lower case
std::string sha256_hex(std::string_view bytes);      // lower-case hex SHA-256 of `bytes`

}  // namespace autoglm::security
