// See digest.h.
#include "security/digest.h"

#include <openssl/evp.h>

#include "core/error.h"

namespace autoglm::security {

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0xf];
  }
  return hex;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    fail(ErrorCode::kInternal, "SHA-256 failed");
  }
  return to_hex(std::span<const uint8_t>(digest, length));
}

}  // namespace autoglm::security
