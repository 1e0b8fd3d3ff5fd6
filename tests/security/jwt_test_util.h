// Test helpers that mint JWTs with OpenSSL directly (keys generated in-process), so the
// verifier is checked against independently produced signatures rather than its own code.
// Thread ownership: test thread only.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "security/jwt_base64url.h"

namespace autoglm::security::testing {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Pkey generate_rsa_key() {
  return Pkey(EVP_RSA_gen(2048));
}
inline Pkey generate_ed25519_key() {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
}

inline std::string public_key_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, key) != 1) throw std::runtime_error("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

inline std::string hmac_sha256(std::string_view secret, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof(mac),
            &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// RS256 when `key` is RSA (SHA-256 digest), EdDSA when it is Ed25519 (no digest).
inline std::string sign_with(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const EVP_MD* md = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? EVP_sha256() : nullptr;
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, md, nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) == 1) {
    sig.resize(len);
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(data.data()), data.size());
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (sig.empty()) throw std::runtime_error("EVP_DigestSign failed");
  return sig;
}

inline std::string signing_input(std::string_view header_json, std::string_view payload_json) {
  return base64url_encode(header_json) + "." + base64url_encode(payload_json);
}

inline std::string mint_hs256(std::string_view header_json, std::string_view payload_json,
                              std::string_view secret) {
  const std::string input = signing_input(header_json, payload_json);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

inline std::string mint_signed(std::string_view header_json, std::string_view payload_json,
                               EVP_PKEY* key) {
  const std::string input = signing_input(header_json, payload_json);
  return input + "." + base64url_encode(sign_with(key, input));
}

}  // namespace autoglm::security::testing
