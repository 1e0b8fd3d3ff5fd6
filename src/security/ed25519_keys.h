// Ed25519 keys for model signing, through OpenSSL's EVP interface: generating a pair, reading
// and writing them as PEM (PKCS#8 private keys, SubjectPublicKeyInfo public keys, exactly what
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write), signing and
// verifying, plus the SHA-256 and base64 helpers the manifest needs.
// Thread ownership: key objects are immutable after loading and may be used from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "security/digest.h"

namespace autoglm::security {

namespace detail {
struct EvpKeyDeleter {
  void operator()(void* key) const noexcept;  // EVP_PKEY_free
};
// Shared, so that keys are cheap to copy; an EVP_PKEY is never modified after loading.
using EvpKeyHandle = std::shared_ptr<void>;
}  // namespace detail

class Ed25519PublicKey {
 public:
  // Throws Error(kInvalidArgument) naming `origin` when the PEM is not an Ed25519 public key.
  static Ed25519PublicKey from_pem(std::string_view pem, std::string_view origin);
  static Ed25519PublicKey load_pem_file(const std::string& path);

  bool verify(std::string_view message, std::span<const uint8_t> signature) const;
  const std::vector<uint8_t>& raw() const { return raw_; }  // the 32 public key bytes
  // Lower-case hex SHA-256 of raw(): the key's fingerprint in a manifest.
  const std::string& fingerprint() const { return fingerprint_; }
  std::string to_pem() const;

 private:
  friend class Ed25519PrivateKey;
  detail::EvpKeyHandle key_;
  std::vector<uint8_t> raw_;
  std::string fingerprint_;
};

class Ed25519PrivateKey {
 public:
  static Ed25519PrivateKey generate();
  // Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"); an encrypted key is refused with the reason.
  static Ed25519PrivateKey from_pem(std::string_view pem, std::string_view origin);
  static Ed25519PrivateKey load_pem_file(const std::string& path);

  std::vector<uint8_t> sign(std::string_view message) const;  // 64 bytes
  const Ed25519PublicKey& public_key() const { return public_key_; }
  std::string to_pem() const;  // PKCS#8, unencrypted

 private:
  detail::EvpKeyHandle key_;
  Ed25519PublicKey public_key_;
};

// Writes PREFIX.key (mode 0600, created exclusively: an existing file is never overwritten) and
// PREFIX.pub. Throws Error(kInvalidArgument) when either file exists or cannot be written.
void write_key_pair(const Ed25519PrivateKey& key, const std::string& prefix);

std::string base64_encode(std::span<const uint8_t> bytes);
// Strict standard base64 (RFC 4648 section 4, padded, no whitespace); throws
// Error(kInvalidArgument) on anything else.
std::vector<uint8_t> base64_decode(std::string_view text);

}  // namespace autoglm::security
