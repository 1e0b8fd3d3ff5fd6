// libFuzzer target for JwtVerifier, with one HS256 and one EdDSA key configured. Each input is
// used twice: (1) as a raw token, which must be rejected or accepted without crashing (nobody
// can forge these keys, so acceptance means a bug); (2) split at the first '\n' into a header
// and a payload that this target signs with the HS256 secret, so the fuzzer also reaches the
// header and claim checks behind the signature. An accepted token must satisfy the policy.
// Thread ownership: the fuzzer's thread. Owner: the "jwt" thread.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "security/jwt_base64url.h"
#include "security/jwt_verifier.h"

namespace {

using autoglm::security::base64url_encode;
using autoglm::security::JwtAlgorithm;
using autoglm::security::JwtPolicy;
using autoglm::security::JwtVerification;
using autoglm::security::JwtVerifier;

constexpr int64_t kNow = 1'800'000'000;
constexpr std::string_view kSecret = "fuzz-hs256-secret-0123456789abcdef";

// A fixed Ed25519 key (seed 0x01..0x20), so findings reproduce across runs.
std::string ed25519_public_pem() {
  unsigned char seed[32];
  for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(i + 1);
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

const JwtVerifier& verifier() {
  static const JwtVerifier instance = [] {
    JwtPolicy policy;
    policy.issuer = "iss";
    policy.audience = "aud";
    return JwtVerifier({{"hs", JwtAlgorithm::kHS256, std::string(kSecret)},
                        {"ed", JwtAlgorithm::kEdDSA, ed25519_public_pem()}},
                       policy);
  }();
  return instance;
}

std::string hs256_token(std::string_view header, std::string_view payload) {
  const std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, kSecret.data(), kSecret.size(),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof(mac),
            &len);
  return input + "." + base64url_encode(std::string_view(reinterpret_cast<char*>(mac), len));
}

void check_accepted(const JwtVerification& v) {
  if (!v.ok) {
    if (v.error.empty()) std::abort();  // every rejection says why
    return;
  }
  if (v.claims.subject.empty() || v.claims.issuer != "iss" || v.claims.expires_at <= kNow - 60) {
    std::abort();
  }
  if (v.claims.not_before > kNow + 60) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const JwtVerification raw = verifier().verify(bytes, kNow);
  if (raw.ok) std::abort();  // a token no one could have signed was accepted
  const size_t newline = bytes.find('\n');
  if (newline != std::string_view::npos) {
    check_accepted(
        verifier().verify(hs256_token(bytes.substr(0, newline), bytes.substr(newline + 1)), kNow));
  }
  return 0;
}
