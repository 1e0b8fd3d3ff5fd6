// See jwt_verifier.h. JWS compact tokens only (header.payload.signature). The order of checks
// matters for safety: size and shape first (no decoding of oversized input), then the header
// picks a configured key, the signature is verified with that key's own algorithm, and only
// then are the claims read. Error strings are short fixed phrases: they go to the audit log
// and the 401 body, so they never contain token bytes, claim values or key material.
// Thread ownership: immutable after construction; verify() is const and takes no locks
// (OpenSSL 3 EVP_PKEY objects may be used for verification from several threads at once).
#include "security/jwt_verifier.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/json_util.h"
#include "security/jwt_base64url.h"

namespace autoglm::security {
namespace {

constexpr size_t kMaxTokenBytes = 8 * 1024;
constexpr int kMaxJsonDepth = 8;  // JOSE headers and claim sets are shallow
constexpr int64_t kMaxLeewaySeconds = 60;
constexpr size_t kMinHmacSecretBytes = 32;  // RFC 7518 3.2: at least the hash output size
constexpr int kMinRsaBits = 2048;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string_view algorithm_name(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::kHS256:
      return "HS256";
    case JwtAlgorithm::kRS256:
      return "RS256";
    case JwtAlgorithm::kEdDSA:
      return "EdDSA";
  }
  return "?";
}

struct ResolvedKey {
  std::string kid;
  JwtAlgorithm algorithm;
  std::string secret;  // HS256 only
  PkeyPtr public_key;  // RS256 / EdDSA only
};

[[noreturn]] void key_error(const JwtKey& key, std::string_view reason) {
  fail(ErrorCode::kInvalidArgument, "JWT key '" + key.kid + "' (" +
                                        std::string(algorithm_name(key.algorithm)) +
                                        "): " + std::string(reason));
}

PkeyPtr load_public_key_pem(const JwtKey& key) {
  if (key.material.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    key_error(key, "public key PEM is too large");
  }
  BIO* bio = BIO_new_mem_buf(key.material.data(), static_cast<int>(key.material.size()));
  if (bio == nullptr) key_error(key, "out of memory reading the public key");
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  if (!pkey) key_error(key, "material is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  const int type = EVP_PKEY_get_base_id(pkey.get());
  if (key.algorithm == JwtAlgorithm::kRS256) {
    if (type != EVP_PKEY_RSA) key_error(key, "RS256 needs an RSA public key");
    if (EVP_PKEY_get_bits(pkey.get()) < kMinRsaBits) key_error(key, "RSA key under 2048 bits");
  } else if (type != EVP_PKEY_ED25519) {
    key_error(key, "EdDSA needs an Ed25519 public key");
  }
  return pkey;
}

ResolvedKey resolve_key(const JwtKey& key) {
  ResolvedKey resolved{key.kid, key.algorithm, {}, nullptr};
  if (key.algorithm == JwtAlgorithm::kHS256) {
    if (key.material.size() < kMinHmacSecretBytes) key_error(key, "secret under 32 bytes");
    // A PEM handed to an HS256 key is almost certainly a misconfiguration that would let
    // anyone holding the public key mint tokens.
    if (key.material.find("-----BEGIN") != std::string::npos) {
      key_error(key, "HS256 secret looks like a PEM key");
    }
    resolved.secret = key.material;
  } else {
    resolved.public_key = load_public_key_pem(key);
  }
  return resolved;
}

bool verify_hs256(const ResolvedKey& key, std::string_view signed_part, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  const unsigned char* computed =
      EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.secret.data(), key.secret.size(),
                reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
                sizeof(mac), &mac_len);
  if (computed == nullptr) {
    ERR_clear_error();
    return false;
  }
  // Length is public (always 32 for HS256); the bytes are compared in constant time.
  return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
}

bool verify_with_public_key(const ResolvedKey& key, std::string_view signed_part,
                            std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  // Ed25519 is "pure" EdDSA: no separate digest (nullptr); RS256 is PKCS#1 v1.5 with SHA-256.
  const EVP_MD* md = key.algorithm == JwtAlgorithm::kRS256 ? EVP_sha256() : nullptr;
  bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.public_key.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()),
                             sig.size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                             signed_part.size()) == 1;
  ERR_clear_error();  // a failed verification leaves entries on this thread's error queue
  return ok;
}

std::optional<Json> decode_json_segment(std::string_view segment) {
  std::optional<std::string> bytes = base64url_decode(segment);
  if (!bytes) return std::nullopt;
  try {
    Json value = parse_json_limited(*bytes, "jwt", kMaxJsonDepth, ErrorCode::kInvalidArgument);
    if (!value.is_object()) return std::nullopt;
    return value;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// A JSON NumericDate as whole seconds (fractions truncated); nullopt for non-numbers,
// booleans, NaN and values outside int64.
std::optional<int64_t> numeric_date(const Json& value) {
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18) return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}

JwtVerification reject(std::string reason) {
  JwtVerification result;
  result.error = std::move(reason);
  return result;
}

}  // namespace

struct JwtVerifier::Impl {
  std::vector<ResolvedKey> keys;
  JwtPolicy policy;

  const ResolvedKey* select_key(const Json& header, std::string* error) const;
  bool check_header(const Json& header, std::string* error) const;
  bool read_claims(const Json& payload, int64_t now, JwtClaims* claims, std::string* error) const;
};

JwtVerifier::JwtVerifier(std::vector<JwtKey> keys, JwtPolicy policy)
    : impl_(std::make_unique<Impl>()) {
  if (keys.empty()) fail(ErrorCode::kInvalidArgument, "JWT: no keys configured");
  std::set<std::string> kids;
  for (const JwtKey& key : keys) {
    if (key.kid.empty() && keys.size() > 1) {
      fail(ErrorCode::kInvalidArgument, "JWT: every key needs a kid when several are configured");
    }
    if (!kids.insert(key.kid).second) key_error(key, "duplicate kid");
    impl_->keys.push_back(resolve_key(key));
  }
  policy.leeway =
      std::clamp(policy.leeway, std::chrono::seconds(0), std::chrono::seconds(kMaxLeewaySeconds));
  impl_->policy = std::move(policy);
}

JwtVerifier::~JwtVerifier() = default;

bool JwtVerifier::Impl::check_header(const Json& header, std::string* error) const {
  // Extensions this verifier does not implement must not be silently ignored (RFC 7515 4.1.11).
  if (header.contains("crit")) return (*error = "unsupported critical header", false);
  if (header.contains("typ")) {
    const Json& typ = header["typ"];
    if (!typ.is_string()) return (*error = "bad token type", false);
    std::string t = typ.get<std::string>();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    if (t != "jwt" && t != "at+jwt" && t != "application/jwt" && t != "application/at+jwt") {
      return (*error = "bad token type", false);
    }
  }
  // jku, x5u, x5c and jwk are deliberately never read: the key always comes from configuration.
  return true;
}

const ResolvedKey* JwtVerifier::Impl::select_key(const Json& header, std::string* error) const {
  const auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return (*error = "missing alg", nullptr);
  const std::string& alg = alg_it->get_ref<const std::string&>();
  const ResolvedKey* key = nullptr;
  const auto kid_it = header.find("kid");
  if (kid_it != header.end()) {
    if (!kid_it->is_string()) return (*error = "bad kid", nullptr);
    const std::string& kid = kid_it->get_ref<const std::string&>();
    for (const ResolvedKey& candidate : keys) {
      if (candidate.kid == kid) key = &candidate;
    }
    if (key == nullptr) return (*error = "unknown key id", nullptr);
  } else if (keys.size() == 1) {
    key = &keys.front();
  } else {
    return (*error = "token has no kid", nullptr);
  }
  // The key decides the algorithm; "none" and every other mismatch fall out here.
  if (alg != algorithm_name(key->algorithm)) return (*error = "algorithm not allowed", nullptr);
  return key;
}

namespace {

bool read_string_list(const Json& payload, const std::string& claim, bool split_spaces,
                      std::vector<std::string>* out) {
  const auto it = payload.find(claim);
  if (claim.empty() || it == payload.end()) return true;
  if (it->is_string() && split_spaces) {
    const std::string& text = it->get_ref<const std::string&>();
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = std::min(text.find(' ', pos), text.size());
      if (end > pos) out->push_back(text.substr(pos, end - pos));
      pos = end + 1;
    }
    return true;
  }
  if (!it->is_array()) return false;
  for (const Json& item : *it) {
    if (!item.is_string()) return false;
    out->push_back(item.get<std::string>());
  }
  return true;
}

bool audience_matches(const Json& payload, const std::string& audience) {
  const auto it = payload.find("aud");
  if (it == payload.end()) return false;
  if (it->is_string()) return it->get_ref<const std::string&>() == audience;
  if (!it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [&](const Json& item) {
    return item.is_string() && item.get_ref<const std::string&>() == audience;
  });
}

}  // namespace

bool JwtVerifier::Impl::read_claims(const Json& payload, int64_t now, JwtClaims* claims,
                                    std::string* error) const {
  const int64_t leeway = policy.leeway.count();
  const auto exp_it = payload.find("exp");
  if (exp_it == payload.end()) return (*error = "missing exp", false);
  const std::optional<int64_t> exp = numeric_date(*exp_it);
  if (!exp) return (*error = "bad exp", false);
  if (saturating_add(now, -leeway) >= *exp) return (*error = "token expired", false);
  claims->expires_at = *exp;
  if (const auto it = payload.find("nbf"); it != payload.end()) {
    const std::optional<int64_t> nbf = numeric_date(*it);
    if (!nbf) return (*error = "bad nbf", false);
    if (saturating_add(now, leeway) < *nbf) return (*error = "token not yet valid", false);
    claims->not_before = *nbf;
  }
  if (const auto it = payload.find("iat"); it != payload.end()) {
    const std::optional<int64_t> iat = numeric_date(*it);
    if (!iat) return (*error = "bad iat", false);
    if (saturating_add(now, leeway) < *iat) return (*error = "token issued in the future", false);
  }
  if (const auto it = payload.find("iss"); it != payload.end() && it->is_string()) {
    claims->issuer = it->get<std::string>();
  }
  if (!policy.issuer.empty() && claims->issuer != policy.issuer) {
    return (*error = "wrong issuer", false);
  }
  if (!policy.audience.empty() && !audience_matches(payload, policy.audience)) {
    return (*error = "wrong audience", false);
  }
  const auto sub_it = payload.find("sub");
  if (sub_it == payload.end() || !sub_it->is_string() || sub_it->get<std::string>().empty()) {
    return (*error = "missing sub", false);
  }
  claims->subject = sub_it->get<std::string>();
  if (const auto it = payload.find(policy.role_claim);
      !policy.role_claim.empty() && it != payload.end()) {
    if (!it->is_string()) return (*error = "bad role", false);
    claims->role = it->get<std::string>();
    if (claims->role != "admin" && claims->role != "user" && claims->role != "metrics") {
      return (*error = "unknown role", false);
    }
  }
  if (!read_string_list(payload, policy.scope_claim, true, &claims->scopes)) {
    return (*error = "bad scope", false);
  }
  if (!read_string_list(payload, policy.models_claim, false, &claims->models)) {
    return (*error = "bad models claim", false);
  }
  return true;
}

JwtVerification JwtVerifier::verify(std::string_view token, int64_t now_unix) const {
  if (token.empty()) return reject("empty token");
  if (token.size() > kMaxTokenBytes) return reject("token too large");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return reject("malformed token");  // JWE (5 parts) and anything else that is not 3 parts
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return reject("malformed token");
  }
  const std::optional<Json> header = decode_json_segment(header_b64);
  if (!header) return reject("malformed token header");
  std::string error;
  if (!impl_->check_header(*header, &error)) return reject(std::move(error));
  const ResolvedKey* key = impl_->select_key(*header, &error);
  if (key == nullptr) return reject(std::move(error));

  const std::optional<std::string> signature = base64url_decode(signature_b64);
  if (!signature) return reject("malformed token signature");
  const std::string_view signed_part = token.substr(0, dot2);
  const bool valid = key->algorithm == JwtAlgorithm::kHS256
                         ? verify_hs256(*key, signed_part, *signature)
                         : verify_with_public_key(*key, signed_part, *signature);
  if (!valid) return reject("bad signature");

  const std::optional<Json> payload = decode_json_segment(payload_b64);
  if (!payload) return reject("malformed token payload");
  JwtVerification result;
  if (!impl_->read_claims(*payload, now_unix, &result.claims, &result.error)) {
    result.claims = {};
    return result;
  }
  result.ok = true;
  return result;
}

}  // namespace autoglm::security
