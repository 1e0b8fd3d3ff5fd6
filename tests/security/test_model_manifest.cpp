// Model signing (issue 8): the manifest's canonical form, strict parsing (path traversal),
// Ed25519 keys in OpenSSL's PEM forms, sign/verify round trips and every failure kind, the
// parallel hasher, and the committed signed and tampered fixtures.
// Thread ownership: test thread (hashing uses its own pool).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "security/model_manifest.h"
#include "security/signing_gate.h"

namespace autoglm::security {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = AUTOGLM_FIXTURES_DIR;
const fs::path kTinyModel = kFixtures / "models" / "glm4-tiny";
const fs::path kSigning = kFixtures / "signing";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "autoglm-sign-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  return read_file_capped(path.string(), 64 << 20);
}

ModelManifest small_manifest() {
  ModelManifest m;
  m.model_id = "tiny \"model\"";
  m.version = "2";
  m.created = "2026-11-22T04:00:00Z";
  m.files = {{"a.json", 3, std::string(64, 'a')}, {"sub/b.safetensors", 10, std::string(64, 'b')}};
  m.signature.public_key_sha256 = std::string(64, 'c');
  m.signature.value = std::string(88, 'A');
  return m;
}

TEST(ManifestCanonicalForm, IsSortedCompactJsonWithoutTheSignature) {
  std::string a(64, 'a');
  std::string b(64, 'b');
  EXPECT_EQ(canonical_manifest(small_manifest()),
            R"({"created":"2026-11-22T04:00:00Z","files":[{"path":"a.json","sha256":")" + a +
                R"(","size":3},{"path":"sub/b.safetensors","sha256":")" + b +
                R"(","size":10}],"format":1,"model_id":"tiny \"model\"","version":"2"})");
  EXPECT_EQ(signed_message(small_manifest()),
            "autoglm-model-manifest-v1\n" + canonical_manifest(small_manifest()));
}

TEST(ManifestCanonicalForm, SurvivesAFileRoundTripAndCoversEveryField) {
  ModelManifest original = small_manifest();
  ModelManifest parsed = parse_manifest(manifest_to_json(original), "test");
  EXPECT_EQ(canonical_manifest(parsed), canonical_manifest(original));
  ModelManifest changed = original;
  changed.files[1].size = 11;
  EXPECT_NE(canonical_manifest(changed), canonical_manifest(original));
  changed = original;
  changed.signature.value = std::string(88, 'B');  // the signature is not covered
  EXPECT_EQ(canonical_manifest(changed), canonical_manifest(original));
}

void expect_refused(const std::string& path) {
  ModelManifest m = small_manifest();
  m.files = {{path, 1, std::string(64, 'a')}};
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "test"), Error) << path;
}

TEST(ManifestParsing, RefusesPathTraversalAndUnsafePaths) {
  for (const char* path : {"../etc/passwd", "a/../../b", "/etc/passwd", "a//b", "./a", "a/.",
                           "a\\b", "", "autoglm-manifest.json", "a\nb", "a/"}) {
    expect_refused(path);
  }
  expect_refused(std::string("a\0b", 3));
  EXPECT_THROW(check_manifest_path("\xff\xfe"), Error);  // not UTF-8
  EXPECT_NO_THROW(check_manifest_path("sub/dir/model-00001-of-00002.safetensors"));
  EXPECT_NO_THROW(check_manifest_path("..hidden/x"));  // ".." only as a whole component
}

TEST(ManifestParsing, RefusesUnsortedDuplicateUnknownAndMalformedFields) {
  ModelManifest m = small_manifest();
  std::swap(m.files[0], m.files[1]);
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "t"), Error);
  m = small_manifest();
  m.files[1] = m.files[0];
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "t"), Error);
  std::string text = manifest_to_json(small_manifest());
  std::string with_extra = text;
  with_extra.insert(1, "\"extra\": 1,");
  EXPECT_THROW(parse_manifest(with_extra, "t"), Error);
  m = small_manifest();
  m.files[0].sha256 = std::string(64, 'A');  // upper-case hex
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "t"), Error);
  m = small_manifest();
  m.created = "yesterday";
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "t"), Error);
  m = small_manifest();
  m.format = 2;
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "t"), Error);
  EXPECT_THROW(parse_manifest("{\"format\": 1, \"format\": 1}", "t"), Error);
  EXPECT_THROW(parse_manifest("[]", "t"), Error);
}

TEST(Ed25519Keys, OpensslMadeKeysSignAndVerify) {
  auto key = Ed25519PrivateKey::load_pem_file((kSigning / "TEST-ONLY-signing.key").string());
  auto pub = Ed25519PublicKey::load_pem_file((kSigning / "TEST-ONLY-signing.pub").string());
  EXPECT_EQ(key.public_key().fingerprint(), pub.fingerprint());
  std::vector<uint8_t> signature = key.sign("message");
  EXPECT_TRUE(pub.verify("message", signature));
  EXPECT_FALSE(pub.verify("messagf", signature));
  signature[10] ^= 1;
  EXPECT_FALSE(pub.verify("message", signature));
  EXPECT_FALSE(Ed25519PrivateKey::generate().public_key().verify("message", key.sign("message")));
  // A public key is not a private key, and a private key file is not a public key.
  EXPECT_THROW(Ed25519PrivateKey::from_pem(pub.to_pem(), "pub"), Error);
  EXPECT_THROW(Ed25519PublicKey::from_pem(key.to_pem(), "key"), Error);
  EXPECT_THROW(Ed25519PublicKey::from_pem("not a key", "junk"), Error);
}

TEST(Ed25519Keys, KeyPairFilesArePrivateAndNeverOverwritten) {
  TempDir dir;
  std::string prefix = (dir.path() / "k").string();
  auto key = Ed25519PrivateKey::generate();
  write_key_pair(key, prefix);
  struct stat info {};
  ASSERT_EQ(::stat((prefix + ".key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(Ed25519PrivateKey::load_pem_file(prefix + ".key").public_key().fingerprint(),
            Ed25519PublicKey::load_pem_file(prefix + ".pub").fingerprint());
  EXPECT_THROW(write_key_pair(Ed25519PrivateKey::generate(), prefix), Error);
  EXPECT_EQ(Ed25519PublicKey::load_pem_file(prefix + ".pub").fingerprint(),
            key.public_key().fingerprint());
}

TEST(Base64, StrictCanonicalDecoding) {
  std::vector<uint8_t> bytes = {0, 1, 2, 250, 251};
  EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
  EXPECT_EQ(base64_encode(std::vector<uint8_t>{'a', 'b', 'c'}), "YWJj");
  for (const char* bad : {"YWJ", "YW=j", "YWJj\n", "YW*j", "YR=="}) {
    EXPECT_THROW(base64_decode(bad), Error) << bad;
  }
}

TEST(ParallelHash, MatchesKnownDigestsAndReportsUnreadableFiles) {
  TempDir dir;
  write_text(dir.path() / "abc", "abc");
  write_text(dir.path() / "empty", "");
  std::string big(3 * 4096 + 17, 'x');
  write_text(dir.path() / "big", big);
  auto digests =
      hash_files_parallel({(dir.path() / "abc").string(), (dir.path() / "missing").string(),
                           (dir.path() / "empty").string(), (dir.path() / "big").string()},
                          {.threads = 3, .block_bytes = 4096});
  EXPECT_EQ(digests[0].sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digests[0].size, 3u);
  EXPECT_FALSE(digests[1].error.empty());
  EXPECT_EQ(digests[2].sha256_hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digests[3].sha256_hex, sha256_hex(big));
  EXPECT_EQ(digests[3].size, big.size());
}

// A signed copy of the glm4-tiny fixture in a temporary directory.
class SignedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.path() / "model";
    fs::copy(kTinyModel, model_, fs::copy_options::recursive);
    fs::create_directory(model_ / "extra_dir");
    write_text(model_ / "extra_dir" / "notes.txt", "nested files are signed too");
    SignOptions options;
    options.version = "7";
    write_manifest(model_.string(), sign_model_directory(model_.string(), key_, options));
  }
  VerificationReport verify() {
    return verify_model_directory(model_.string(), {key_.public_key()}, {});
  }
  // The single problem of the given kind, naming `path`.
  void expect_only(IntegrityProblemKind kind, const std::string& path) {
    VerificationReport report = verify();
    ASSERT_EQ(report.problems.size(), 1u) << report.summary();
    EXPECT_EQ(report.problems[0].kind, kind) << report.summary();
    EXPECT_EQ(report.problems[0].path, path);
    if (!path.empty()) {
      EXPECT_NE(report.summary().find(path), std::string::npos);
    }
  }
  TempDir dir_;
  fs::path model_;
  Ed25519PrivateKey key_ = Ed25519PrivateKey::generate();
};

TEST_F(SignedModel, RoundTripVerifiesEveryFile) {
  VerificationReport report = verify();
  ASSERT_TRUE(report.ok()) << report.summary();
  EXPECT_EQ(report.manifest.version, "7");
  EXPECT_EQ(report.manifest.model_id, "model");
  EXPECT_EQ(report.signer, key_.public_key().fingerprint());
  EXPECT_EQ(report.manifest.files.size(), 9u);  // 8 fixture files + extra_dir/notes.txt
  EXPECT_EQ(report.manifest.files.back().path, "tokenizer_config.json");
  uint64_t total = 0;
  for (const auto& entry : report.manifest.files) total += entry.size;
  EXPECT_EQ(report.bytes_hashed, total);
}

TEST_F(SignedModel, MissingManifest) {
  fs::remove(model_ / "autoglm-manifest.json");
  expect_only(IntegrityProblemKind::kMissingManifest, "");
}

TEST_F(SignedModel, MalformedManifest) {
  write_text(model_ / "autoglm-manifest.json", "{\"format\": 1");
  expect_only(IntegrityProblemKind::kMalformedManifest, "");
}

TEST_F(SignedModel, EditedManifestIsABadSignature) {
  std::string text = read_text(model_ / "autoglm-manifest.json");
  text.replace(text.find("\"version\": \"7\""), 14, "\"version\": \"8\"");
  write_text(model_ / "autoglm-manifest.json", text);
  expect_only(IntegrityProblemKind::kBadSignature, "");
}

TEST_F(SignedModel, UntrustedKey) {
  VerificationReport report =
      verify_model_directory(model_.string(), {Ed25519PrivateKey::generate().public_key()}, {});
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].kind, IntegrityProblemKind::kUntrustedKey);
  EXPECT_EQ(verify_model_directory(model_.string(), {}, {}).problems[0].kind,
            IntegrityProblemKind::kUntrustedKey);
}

TEST_F(SignedModel, ModifiedFileSameSizeIsAHashMismatch) {
  std::string bytes = read_text(model_ / "model.safetensors");
  bytes[bytes.size() - 1] ^= 1;
  write_text(model_ / "model.safetensors", bytes);
  expect_only(IntegrityProblemKind::kHashMismatch, "model.safetensors");
}

TEST_F(SignedModel, ResizedFileIsASizeMismatch) {
  std::ofstream(model_ / "config.json", std::ios::app) << " ";
  expect_only(IntegrityProblemKind::kSizeMismatch, "config.json");
}

TEST_F(SignedModel, ExtraAndMissingFiles) {
  write_text(model_ / "extra_dir" / "planted.safetensors", "x");
  expect_only(IntegrityProblemKind::kExtraFile, "extra_dir/planted.safetensors");
  fs::remove(model_ / "extra_dir" / "planted.safetensors");
  fs::remove(model_ / "tokenizer.json");
  expect_only(IntegrityProblemKind::kMissingFile, "tokenizer.json");
}

TEST_F(SignedModel, SymlinkOutOfTheDirectoryIsRefused) {
  fs::remove(model_ / "config.json");
  write_text(dir_.path() / "outside.json", read_text(kTinyModel / "config.json"));
  fs::create_symlink(dir_.path() / "outside.json", model_ / "config.json");
  expect_only(IntegrityProblemKind::kUnsafeFile, "config.json");
  EXPECT_THROW(sign_model_directory(model_.string(), key_), Error);
}

TEST_F(SignedModel, SymlinkInsideTheDirectoryIsHashedThrough) {
  fs::rename(model_ / "config.json", model_ / "extra_dir" / "config.json");
  fs::create_symlink("extra_dir/config.json", model_ / "config.json");
  write_manifest(model_.string(), sign_model_directory(model_.string(), key_));
  ASSERT_TRUE(verify().ok()) << verify().summary();
}

TEST_F(SignedModel, GateRefusesAtOnceWithoutAManifestAndPassesASignedModel) {
  auto passing = start_model_verification(model_.string(), {key_.public_key()});
  EXPECT_TRUE(passing.get().ok());
  fs::remove(model_ / "autoglm-manifest.json");
  auto refused = start_model_verification(model_.string(), {key_.public_key()});
  ASSERT_EQ(refused.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(refused.get().problems[0].kind, IntegrityProblemKind::kMissingManifest);
  EXPECT_THROW(load_trusted_keys({}), Error);
  EXPECT_EQ(split_key_list(" a.pub, ,b.pub "), (std::vector<std::string>{"a.pub", "b.pub"}));
}

// Verifies the glm4-tiny fixture against a committed detached manifest.
VerificationReport verify_fixture(const std::string& manifest_name) {
  std::vector<Ed25519PublicKey> trusted = {
      Ed25519PublicKey::load_pem_file((kSigning / "TEST-ONLY-signing.pub").string())};
  VerifyOptions options;
  options.manifest_path = (kSigning / manifest_name).string();
  return verify_model_directory(kTinyModel.string(), trusted, options);
}

TEST(CommittedFixture, SignedManifestMatchesAndTamperedOneIsRefused) {
  VerificationReport good = verify_fixture("glm4-tiny.manifest.json");
  EXPECT_TRUE(good.ok()) << good.summary() << " (run tests/fixtures/signing/make_fixture.sh?)";
  VerificationReport tampered = verify_fixture("glm4-tiny-tampered.manifest.json");
  ASSERT_EQ(tampered.problems.size(), 1u) << tampered.summary();
  EXPECT_EQ(tampered.problems[0].kind, IntegrityProblemKind::kHashMismatch);
  EXPECT_EQ(tampered.problems[0].path, "model.safetensors");
}

}  // namespace
}  // namespace autoglm::security
