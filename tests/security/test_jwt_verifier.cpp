// Unit tests for JwtVerifier: tokens are minted here with OpenSSL (RSA-2048 and Ed25519 keys
// generated per test suite, a random-looking HS256 secret), then verified, forged, edited and
// re-signed to cover the auth cases of BAD_INPUTS.md (21, 22) and the JOSE pitfalls: alg=none,
// HS/RS key confusion, unknown kid, jku, crit, malformed and oversized tokens.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "jwt_test_util.h"
#include "security/jwt_base64url.h"
#include "security/jwt_verifier.h"

namespace autoglm::security {
namespace {

using nlohmann::json;
using namespace testing;

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256-test-secret";

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = generate_rsa_key().release();
    ed_ = generate_ed25519_key().release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ed_);
  }

  static JwtPolicy policy() {
    JwtPolicy p;
    p.issuer = "https://issuer.example";
    p.audience = "autoglm";
    return p;
  }
  static std::vector<JwtKey> all_keys() {
    return {{"hs", JwtAlgorithm::kHS256, kSecret},
            {"rs", JwtAlgorithm::kRS256, public_key_pem(rsa_)},
            {"ed", JwtAlgorithm::kEdDSA, public_key_pem(ed_)}};
  }
  static json claims() {
    return {{"iss", "https://issuer.example"},
            {"aud", "autoglm"},
            {"sub", "alice"},
            {"exp", kNow + 300},
            {"iat", kNow - 10},
            {"role", "user"},
            {"scope", "chat embeddings"},
            {"models", {"glm-4"}}};
  }
  static json header(const std::string& alg, const std::string& kid) {
    return {{"alg", alg}, {"typ", "JWT"}, {"kid", kid}};
  }

  JwtVerification verify(const std::string& token, int64_t now = kNow) {
    return verifier_.verify(token, now);
  }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* ed_;
  JwtVerifier verifier_{all_keys(), policy()};
};
EVP_PKEY* JwtVerifierTest::rsa_ = nullptr;
EVP_PKEY* JwtVerifierTest::ed_ = nullptr;

TEST_F(JwtVerifierTest, AcceptsValidTokensForEachAlgorithm) {
  const std::string tokens[] = {mint_hs256(header("HS256", "hs").dump(), claims().dump(), kSecret),
                                mint_signed(header("RS256", "rs").dump(), claims().dump(), rsa_),
                                mint_signed(header("EdDSA", "ed").dump(), claims().dump(), ed_)};
  for (const std::string& token : tokens) {
    const JwtVerification v = verify(token);
    ASSERT_TRUE(v.ok) << v.error;
    EXPECT_EQ(v.claims.subject, "alice");
    EXPECT_EQ(v.claims.issuer, "https://issuer.example");
    EXPECT_EQ(v.claims.role, "user");
    EXPECT_EQ(v.claims.scopes, (std::vector<std::string>{"chat", "embeddings"}));
    EXPECT_EQ(v.claims.models, (std::vector<std::string>{"glm-4"}));
    EXPECT_EQ(v.claims.expires_at, kNow + 300);
  }
}

TEST_F(JwtVerifierTest, RejectsForgedSignatures) {
  // Same header and claims, signed by keys the verifier does not trust.
  Pkey other_rsa = generate_rsa_key();
  Pkey other_ed = generate_ed25519_key();
  const std::string forged[] = {
      mint_hs256(header("HS256", "hs").dump(), claims().dump(), kSecret + "x"),
      mint_signed(header("RS256", "rs").dump(), claims().dump(), other_rsa.get()),
      mint_signed(header("EdDSA", "ed").dump(), claims().dump(), other_ed.get())};
  for (const std::string& token : forged) EXPECT_EQ(verify(token).error, "bad signature");
}

TEST_F(JwtVerifierTest, RejectsPayloadEditedAfterSigning) {
  const std::string token = mint_signed(header("EdDSA", "ed").dump(), claims().dump(), ed_);
  json elevated = claims();
  elevated["role"] = "admin";
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.rfind('.');
  const std::string edited =
      token.substr(0, dot1 + 1) + base64url_encode(elevated.dump()) + token.substr(dot2);
  EXPECT_EQ(verify(edited).error, "bad signature");
  // Flipping one signature character also fails.
  std::string flipped = token;
  flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify(flipped).ok);
}

TEST_F(JwtVerifierTest, ExpiryHonoursLeewayOfAtMostSixtySeconds) {
  json c = claims();
  c["exp"] = kNow - 30;  // expired 30 s ago: within the 60 s leeway
  EXPECT_TRUE(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).ok);
  c["exp"] = kNow - 61;
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "token expired");
  // A policy asking for an hour of leeway is capped at 60 s.
  JwtPolicy lax = policy();
  lax.leeway = std::chrono::hours(1);
  JwtVerifier capped({{"hs", JwtAlgorithm::kHS256, kSecret}}, lax);
  c["exp"] = kNow - 120;
  EXPECT_EQ(capped.verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret), kNow).error,
            "token expired");
  c.erase("exp");
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "missing exp");
  c["exp"] = "tomorrow";
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error, "bad exp");
}

TEST_F(JwtVerifierTest, RejectsFutureNotBeforeAndIssuedAt) {
  json c = claims();
  c["nbf"] = kNow + 30;  // within leeway
  EXPECT_TRUE(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).ok);
  c["nbf"] = kNow + 120;
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "token not yet valid");
  c = claims();
  c["iat"] = kNow + 3600;
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "token issued in the future");
}

TEST_F(JwtVerifierTest, ChecksIssuerAudienceAndSubject) {
  json c = claims();
  c["iss"] = "https://evil.example";
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "wrong issuer");
  c = claims();
  c["aud"] = "someone-else";
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "wrong audience");
  c["aud"] = {"someone-else", "autoglm"};  // aud may be an array containing ours
  EXPECT_TRUE(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).ok);
  c["aud"] = {"someone-else"};
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "wrong audience");
  c = claims();
  c.erase("sub");
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "missing sub");
}

TEST_F(JwtVerifierTest, RejectsAlgNoneInEveryCasing) {
  for (const char* alg : {"none", "None", "NONE"}) {
    json h = {{"alg", alg}, {"kid", "hs"}};
    const std::string unsigned_token = signing_input(h.dump(), claims().dump()) + ".";
    EXPECT_FALSE(verify(unsigned_token).ok) << alg;
    // Even with a (meaningless) signature segment attached.
    EXPECT_FALSE(verify(signing_input(h.dump(), claims().dump()) + ".AAAA").ok) << alg;
  }
}

TEST_F(JwtVerifierTest, RejectsHs256SignedWithTheRsaPublicKeyText) {
  // The classic key-confusion attack: the attacker knows the RS256 public key PEM and uses it
  // as an HMAC secret. The key "rs" is bound to RS256, so an HS256 header cannot use it.
  const std::string pem = public_key_pem(rsa_);
  const std::string token = mint_hs256(header("HS256", "rs").dump(), claims().dump(), pem);
  EXPECT_EQ(verify(token).error, "algorithm not allowed");
  JwtVerifier only_rsa({{"", JwtAlgorithm::kRS256, pem}}, policy());
  json no_kid = {{"alg", "HS256"}};
  EXPECT_FALSE(only_rsa.verify(mint_hs256(no_kid.dump(), claims().dump(), pem), kNow).ok);
}

TEST_F(JwtVerifierTest, KidSelectsTheKeyAndAlgMustMatchIt) {
  EXPECT_EQ(verify(mint_hs256(header("HS256", "nope").dump(), claims().dump(), kSecret)).error,
            "unknown key id");
  // RS256 signature presented under the Ed25519 key's kid.
  EXPECT_EQ(verify(mint_signed(header("RS256", "ed").dump(), claims().dump(), rsa_)).error,
            "algorithm not allowed");
  json no_kid = {{"alg", "HS256"}};
  EXPECT_EQ(verify(mint_hs256(no_kid.dump(), claims().dump(), kSecret)).error, "token has no kid");
  // A single configured key matches a token without kid.
  JwtVerifier single({{"k1", JwtAlgorithm::kHS256, kSecret}}, policy());
  EXPECT_TRUE(single.verify(mint_hs256(no_kid.dump(), claims().dump(), kSecret), kNow).ok);
}

TEST_F(JwtVerifierTest, IgnoresJkuAndEmbeddedKeysAndRejectsCrit) {
  // jku/x5u/jwk point at attacker keys; the verifier never reads them, so a token signed with
  // the configured key passes and one signed with the attacker's key fails.
  Pkey attacker = generate_ed25519_key();
  json h = header("EdDSA", "ed");
  h["jku"] = "https://attacker.example/jwks.json";
  h["x5u"] = "https://attacker.example/cert.pem";
  h["jwk"] = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AAAA"}};
  EXPECT_TRUE(verify(mint_signed(h.dump(), claims().dump(), ed_)).ok);
  EXPECT_EQ(verify(mint_signed(h.dump(), claims().dump(), attacker.get())).error, "bad signature");
  h = header("EdDSA", "ed");
  h["crit"] = {"exp"};
  EXPECT_EQ(verify(mint_signed(h.dump(), claims().dump(), ed_)).error,
            "unsupported critical header");
}

TEST_F(JwtVerifierTest, RejectsMalformedTokens) {
  const std::string good = mint_hs256(header("HS256", "hs").dump(), claims().dump(), kSecret);
  const size_t dot2 = good.rfind('.');
  const std::string cases[] = {
      "",
      "abc",
      "a.b",
      good + ".extra",                        // 4 segments
      "." + good.substr(good.find('.') + 1),  // empty header
      good.substr(0, dot2 + 1),               // empty signature
      good.substr(0, dot2) + ".abc=",         // padding
      good.substr(0, dot2) + ".ab+/",         // standard base64, not base64url
      "eyJ!" + good.substr(good.find('.')),   // stray character in the header
      base64url_encode("[1,2]") + "." + base64url_encode("{}") + ".AAAA",  // header not object
      base64url_encode("{\"alg\":") + "." + base64url_encode("{}") + ".AAAA",
      base64url_encode(R"({"alg":"HS256","alg":"none"})") + "." + base64url_encode("{}") + ".AA",
  };
  for (const std::string& token : cases) {
    const JwtVerification v = verify(token);
    EXPECT_FALSE(v.ok) << token;
    EXPECT_FALSE(v.error.empty());
    EXPECT_EQ(v.error.find(token.empty() ? "\x01" : token), std::string::npos);
  }
  // A signed payload that is not JSON fails after the signature check.
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), "not json", kSecret)).error,
            "malformed token payload");
}

TEST_F(JwtVerifierTest, RejectsOversizedTokensBeforeDecoding) {
  json c = claims();
  c["pad"] = std::string(9000, 'x');
  const std::string token = mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret);
  EXPECT_EQ(verify(token).error, "token too large");
  EXPECT_EQ(verify(std::string(8193, 'a')).error, "token too large");
}

TEST_F(JwtVerifierTest, RejectsBadRoleScopeAndModelsClaims) {
  json c = claims();
  c["role"] = "root";
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "unknown role");
  c = claims();
  c["scope"] = {"a", "b"};  // an array of strings is accepted too
  const JwtVerification v = verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret));
  ASSERT_TRUE(v.ok) << v.error;
  EXPECT_EQ(v.claims.scopes, (std::vector<std::string>{"a", "b"}));
  c["scope"] = 7;
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error, "bad scope");
  c = claims();
  c["models"] = "glm-4";
  EXPECT_EQ(verify(mint_hs256(header("HS256", "hs").dump(), c.dump(), kSecret)).error,
            "bad models claim");
}

TEST_F(JwtVerifierTest, ConstructorRejectsUnusableKeys) {
  const std::string rsa_pem = public_key_pem(rsa_);
  const std::string ed_pem = public_key_pem(ed_);
  const std::vector<std::vector<JwtKey>> bad = {
      {},
      {{"k", JwtAlgorithm::kHS256, "short"}},
      {{"k", JwtAlgorithm::kHS256, rsa_pem}},  // a PEM as HMAC secret
      {{"k", JwtAlgorithm::kRS256, "not a pem"}},
      {{"k", JwtAlgorithm::kRS256, ed_pem}},  // wrong key type for the algorithm
      {{"k", JwtAlgorithm::kEdDSA, rsa_pem}},
      {{"k", JwtAlgorithm::kHS256, kSecret}, {"k", JwtAlgorithm::kEdDSA, ed_pem}},
      {{"", JwtAlgorithm::kHS256, kSecret}, {"k", JwtAlgorithm::kEdDSA, ed_pem}},
  };
  for (const auto& keys : bad) {
    EXPECT_THROW(JwtVerifier(keys, policy()), Error);
  }
}

TEST(Base64Url, RoundTripsAndRejectsNonCanonicalText) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zm9v=").has_value());
  EXPECT_FALSE(base64url_decode("Zg==").has_value());
  EXPECT_FALSE(base64url_decode("Z").has_value());   // 4n+1 characters
  EXPECT_FALSE(base64url_decode("Zh").has_value());  // non-zero leftover bits ("Zg" is "f")
  EXPECT_FALSE(base64url_decode("Zm 9v").has_value());
  EXPECT_FALSE(base64url_decode("Zm9v\n").has_value());
}

}  // namespace
}  // namespace autoglm::security
