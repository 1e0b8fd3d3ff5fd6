// The signed model manifest (autoglm-manifest.json): its format, the canonical bytes the
// Ed25519 signature covers, strict parsing of an untrusted manifest, and building, signing and
// verifying one for a model directory. docs/SECURITY.md ("Model integrity") is the format's
// specification; this header and model_manifest.cpp implement it.
// Thread ownership: pure functions over values; signing and verifying hash files on a pool of
// threads they own and join (see parallel_hash.h). Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "security/ed25519_keys.h"
#include "security/parallel_hash.h"

namespace autoglm::security {

inline constexpr std::string_view kManifestFileName = "autoglm-manifest.json";
inline constexpr int kManifestFormat = 1;
// Prepended to the canonical JSON before signing, so that a manifest signature can never be
// replayed as a signature over some other kind of message made with the same key.
inline constexpr std::string_view kSignatureContext = "autoglm-model-manifest-v1\n";
inline constexpr size_t kMaxManifestBytes = size_t{16} << 20;
inline constexpr size_t kMaxManifestFiles = 100'000;

struct ManifestEntry {
  std::string path;  // relative, '/'-separated, no "." or ".." parts; sorted by bytes
  uint64_t size = 0;
  std::string sha256;  // 64 lower-case hex digits
};

struct ManifestSignature {
  std::string alg = "Ed25519";
  std::string public_key_sha256;  // SHA-256 (hex) of the signer's 32 raw public key bytes
  std::string value;              // base64 of the 64-byte signature
};

struct ModelManifest {
  int format = kManifestFormat;
  std::string model_id;
  std::string version;
  std::string created;  // RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ"
  std::vector<ManifestEntry> files;
  ManifestSignature signature;
};

// RFC 8785 (JCS) serialization of every field but "signature": keys sorted, no whitespace.
std::string canonical_manifest(const ModelManifest& manifest);
// kSignatureContext + canonical_manifest(): the exact bytes that are signed.
std::string signed_message(const ModelManifest& manifest);
// The manifest file's text (indented, fields in the documented order, trailing newline).
std::string manifest_to_json(const ModelManifest& manifest);
// Strict: unknown or missing fields, wrong types, unsafe or unsorted paths, bad digests and
// oversize input are Error(kInvalidModel) naming `origin`.
ModelManifest parse_manifest(std::string_view text, std::string_view origin);
// Throws Error(kInvalidModel) when `path` is not a safe relative path (see the .cpp).
void check_manifest_path(std::string_view path);
std::string rfc3339_utc_now();

// The files of a model directory, as a manifest lists them: every regular file, recursively,
// except the top-level manifest; a symlink is listed (and hashed through) only when it points
// to a regular file inside the directory. Anything else is a problem.
struct ListingProblem {
  std::string path;  // relative (as UTF-8 as it can be printed)
  std::string why;   // "symlink pointing outside the model directory", ...
};
struct DirectoryListing {
  std::vector<std::string> files;  // relative paths, sorted by bytes
  std::vector<ListingProblem> problems;
};
DirectoryListing list_model_files(const std::string& directory);

struct SignOptions {
  std::string model_id;  // empty: the directory's name
  std::string version = "1";
  std::string created;  // empty: now
  HashOptions hash;
};
// Lists, hashes and signs; throws Error(kInvalidModel) on any listing problem or unreadable file.
ModelManifest sign_model_directory(const std::string& directory, const Ed25519PrivateKey& key,
                                   const SignOptions& options = {});
// Writes DIRECTORY/autoglm-manifest.json atomically (temporary file, then rename).
void write_manifest(const std::string& directory, const ModelManifest& manifest);

enum class IntegrityProblemKind {
  kMissingManifest,
  kMalformedManifest,
  kUntrustedKey,
  kBadSignature,
  kMissingFile,
  kExtraFile,
  kSizeMismatch,
  kHashMismatch,
  kUnreadableFile,
  kUnsafeFile,  // a symlink out of the directory, a device, a non-UTF-8 name
};
std::string_view integrity_problem_name(IntegrityProblemKind kind);  // "hash_mismatch", ...

struct IntegrityProblem {
  IntegrityProblemKind kind;
  std::string path;  // the file at fault, relative; empty for manifest-level problems
  std::string message;
};

struct VerificationReport {
  std::vector<IntegrityProblem> problems;
  ModelManifest manifest;  // as parsed (empty when missing or malformed)
  std::string signer;      // fingerprint of the trusted key that verified the signature
  uint64_t bytes_hashed = 0;
  double hash_seconds = 0;
  bool ok() const { return problems.empty(); }
  // One line: "model M version V: N files, B bytes, signed by K" or the first problem and count.
  std::string summary() const;
};

struct VerifyOptions {
  std::string manifest_path;  // empty: DIRECTORY/autoglm-manifest.json
  HashOptions hash;
};
// The two stages of verify_model_directory. check_manifest_signature reads the manifest and
// checks its signature (milliseconds); check_model_files lists and hashes the directory against
// report.manifest, adding its problems to the report (seconds per GB; call only when the first
// stage found none: an unauthenticated list is worth nothing).
VerificationReport check_manifest_signature(const std::string& directory,
                                            const std::vector<Ed25519PublicKey>& trusted_keys,
                                            const std::string& manifest_path = {});
void check_model_files(const std::string& directory, const HashOptions& hash_options,
                       VerificationReport& report);
// Never throws for a problem with the model: every problem found is in the report. The files
// are hashed only once the signature is good.
VerificationReport verify_model_directory(const std::string& directory,
                                          const std::vector<Ed25519PublicKey>& trusted_keys,
                                          const VerifyOptions& options = {});

}  // namespace autoglm::security
