// JWT bearer-token verification (RFC 7519/7515, compact JWS only): HS256, RS256 and EdDSA
// (Ed25519) through OpenSSL. Each configured key has a kid and is bound to exactly one
// algorithm, so a token cannot pick how its signature is checked (no alg=none, no HS256
// signed with an RSA public key). Nothing is ever fetched (jku/x5u are ignored).
// Thread ownership: a JwtVerifier is immutable after construction; verify() is safe from any
// thread. Reloading builds a new verifier and swaps the shared_ptr.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::security {

enum class JwtAlgorithm { kHS256, kRS256, kEdDSA };

struct JwtKey {
  std::string kid;  // matched against the token header's kid; a single key may omit kid
  JwtAlgorithm algorithm = JwtAlgorithm::kHS256;
  std::string material;  // HS256: the secret bytes; RS256/EdDSA: a PEM public key
};

struct JwtPolicy {
  std::string issuer;                   // required "iss" (empty: not checked)
  std::string audience;                 // must be in "aud" (string or array) (empty: not checked)
  std::chrono::seconds leeway{60};      // clock skew allowed on exp/nbf/iat; capped at 60 s
  std::string role_claim = "role";      // "admin" | "user" | "metrics"
  std::string scope_claim = "scope";    // space-separated string or array of strings
  std::string models_claim = "models";  // optional array of allowed model names
};

struct JwtClaims {
  std::string subject;  // "sub"
  std::string issuer;
  std::string role;  // from policy.role_claim; empty when absent
  std::vector<std::string> scopes;
  std::vector<std::string> models;
  int64_t expires_at = 0;  // "exp" (required)
  int64_t not_before = 0;  // "nbf" (0 when absent)
};

struct JwtVerification {
  bool ok = false;
  JwtClaims claims;   // valid only when ok
  std::string error;  // short reason for the audit log and the 401 ("token expired"); never
                      // echoes the token or key material
};

class JwtVerifier {
 public:
  // Throws autoglm::Error(kInvalidArgument) for unusable key material (bad PEM, a PEM of the
  // wrong key type for its algorithm, an HS256 secret under 32 bytes, duplicate kids).
  JwtVerifier(std::vector<JwtKey> keys, JwtPolicy policy);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Verifies signature, header (typ/alg/kid), exp/nbf against `now_unix` with the leeway,
  // iss and aud. Bounded: tokens over 8 KB are rejected before decoding.
  JwtVerification verify(std::string_view token, int64_t now_unix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads the JWT section of the auth configuration: a YAML file
//   issuer: ..., audience: ..., leeway_s: 60,
//   keys: [{kid: k1, alg: HS256, secret_file: ...}, {kid: k2, alg: RS256, public_key_file: ...}]
// Relative paths are resolved against the file's directory. Errors name the file and the key.
struct JwtConfig {
  std::vector<JwtKey> keys;
  JwtPolicy policy;
};
JwtConfig load_jwt_config(const std::string& yaml_path);

}  // namespace autoglm::security
