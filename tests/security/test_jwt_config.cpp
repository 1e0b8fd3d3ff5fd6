// Unit tests for load_jwt_config: a valid file with HS256, RS256 and EdDSA keys (paths
// relative to the file), the "jwt:" section form, and errors that name the file and the key.
// Thread ownership: test thread only.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "jwt_test_util.h"
#include "security/jwt_verifier.h"

namespace autoglm::security {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class JwtConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "jwtcfg-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    write("hs.secret", "0123456789abcdef0123456789abcdef\n");
    write("rs.pem", rsa_pem_);
    write("ed.pem", ed_pem_);
  }
  static void SetUpTestSuite() {
    rsa_pem_ = public_key_pem(generate_rsa_key().get());
    ed_pem_ = public_key_pem(generate_ed25519_key().get());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  // Expects load_jwt_config to throw with a message containing the file path and `key`.
  void expect_error(const std::string& yaml, const std::string& key) {
    const std::string path = write("auth.yaml", yaml);
    try {
      load_jwt_config(path);
      ADD_FAILURE() << "accepted:\n" << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }

  static std::string rsa_pem_;
  static std::string ed_pem_;
  fs::path dir_;
};
std::string JwtConfigTest::rsa_pem_;
std::string JwtConfigTest::ed_pem_;

TEST_F(JwtConfigTest, LoadsKeysAndPolicy) {
  const std::string path = write("auth.yaml", R"(
issuer: https://issuer.example
audience: autoglm
leeway_s: 30
keys:
  - {kid: k1, alg: HS256, secret_file: hs.secret}
  - {kid: k2, alg: RS256, public_key_file: rs.pem}
  - {kid: k3, alg: EdDSA, public_key_file: )" + (dir_ / "ed.pem").string() +
                                                  "}\n");
  const JwtConfig config = load_jwt_config(path);
  ASSERT_EQ(config.keys.size(), 3u);
  EXPECT_EQ(config.keys[0].material, "0123456789abcdef0123456789abcdef");  // newline dropped
  EXPECT_EQ(config.keys[1].algorithm, JwtAlgorithm::kRS256);
  EXPECT_EQ(config.keys[2].kid, "k3");
  EXPECT_EQ(config.policy.issuer, "https://issuer.example");
  EXPECT_EQ(config.policy.audience, "autoglm");
  EXPECT_EQ(config.policy.leeway.count(), 30);
  EXPECT_NO_THROW(JwtVerifier(config.keys, config.policy));
}

TEST_F(JwtConfigTest, ReadsTheJwtSectionOfALargerFile) {
  const std::string path = write("auth.yaml",
                                 "api_keys_file: keys.yaml\n"
                                 "jwt:\n  keys: [{kid: a, alg: HS256, secret_file: hs.secret}]\n");
  EXPECT_EQ(load_jwt_config(path).keys.size(), 1u);
}

TEST_F(JwtConfigTest, ErrorsNameTheFileAndTheKey) {
  expect_error("audiance: x\nkeys: [{kid: a, alg: HS256, secret_file: hs.secret}]\n", "audiance");
  expect_error("leeway_s: 3600\nkeys: [{kid: a, alg: HS256, secret_file: hs.secret}]\n",
               "leeway_s");
  expect_error("issuer: x\n", "keys");
  expect_error("keys: [{kid: a, alg: none, secret_file: hs.secret}]\n", "keys[0].alg");
  expect_error("keys: [{kid: a, alg: HS256, secret_file: missing}]\n", "keys[0].secret_file");
  expect_error("keys: [{kid: a, alg: RS256, public_key_file: hs.secret}]\n", "keys[0]");
  expect_error("keys: [{kid: a, alg: EdDSA, public_key_file: rs.pem}]\n", "keys[0]");
  expect_error("keys: [{kid: a, alg: HS256, public_key_file: rs.pem}]\n", "public_key_file");
  expect_error(
      "keys: [{kid: a, alg: HS256, secret_file: hs.secret},"
      " {kid: a, alg: EdDSA, public_key_file: ed.pem}]\n",
      "keys[1].kid");
  expect_error("keys: [unclosed\n", "auth.yaml");
}

}  // namespace
}  // namespace autoglm::security
