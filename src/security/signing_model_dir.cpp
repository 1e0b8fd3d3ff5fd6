// Model directories and their manifests: listing the files a manifest must cover, signing a
// directory, writing the manifest atomically, and verifying a directory against trusted keys
// (declared in model_manifest.h). Thread ownership: any thread; hashing runs on a pool that
// hash_files_parallel owns.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <system_error>

#include "core/error.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "security/model_manifest.h"

namespace autoglm::security {
namespace fs = std::filesystem;
namespace {

constexpr int kMaxDirectoryDepth = 32;

bool inside(const fs::path& root, const fs::path& target) {
  auto [root_end, target_it] =
      std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  return root_end == root.end() && target_it != target.end();
}

// Classifies one entry; appends it to the listing, recurses, or records a problem.
void list_entry(const fs::path& root, const fs::directory_entry& entry, int depth,
                DirectoryListing& listing);

void list_directory(const fs::path& root, const fs::path& directory, int depth,
                    DirectoryListing& listing) {
  std::error_code error;
  fs::directory_iterator it(directory, error);
  if (error) {
    listing.problems.push_back(
        {directory.lexically_relative(root).generic_string(), "cannot list: " + error.message()});
    return;
  }
  for (; it != fs::directory_iterator(); it.increment(error)) {
    list_entry(root, *it, depth, listing);
  }
  if (error) {
    listing.problems.push_back(
        {directory.lexically_relative(root).generic_string(), "cannot list: " + error.message()});
  }
}

void list_entry(const fs::path& root, const fs::directory_entry& entry, int depth,
                DirectoryListing& listing) {
  std::string relative = entry.path().lexically_relative(root).generic_string();
  if (relative == kManifestFileName) return;
  if (!utf8::is_valid(relative)) {
    std::string parent = entry.path().parent_path().lexically_relative(root).generic_string();
    listing.problems.push_back({parent, "holds a file whose name is not UTF-8"});
    return;
  }
  std::error_code error;
  fs::file_status status = entry.symlink_status(error);
  if (fs::is_symlink(status)) {
    fs::path target = fs::canonical(entry.path(), error);
    if (error || !inside(root, target)) {
      listing.problems.push_back({relative, "symlink pointing outside the model directory"});
    } else if (!fs::is_regular_file(target, error)) {
      listing.problems.push_back({relative, "symlink to something other than a regular file"});
    } else {
      listing.files.push_back(relative);
    }
  } else if (fs::is_directory(status)) {
    if (depth >= kMaxDirectoryDepth) {
      listing.problems.push_back({relative, "directories nested deeper than 32"});
    } else {
      list_directory(root, entry.path(), depth + 1, listing);
    }
  } else if (fs::is_regular_file(status)) {
    listing.files.push_back(relative);
  } else {
    listing.problems.push_back({relative, "not a regular file, directory or symlink"});
  }
}

std::vector<std::string> absolute_paths(const std::string& directory,
                                        const std::vector<std::string>& relative) {
  std::vector<std::string> paths;
  paths.reserve(relative.size());
  for (const std::string& path : relative) paths.push_back((fs::path(directory) / path).string());
  return paths;
}

}  // namespace

DirectoryListing list_model_files(const std::string& directory) {
  DirectoryListing listing;
  std::error_code error;
  fs::path root = fs::canonical(directory, error);
  if (error || !fs::is_directory(root)) {
    fail(ErrorCode::kNotFound, "model directory " + directory + " not found");
  }
  list_directory(root, root, 0, listing);
  std::sort(listing.files.begin(), listing.files.end());
  for (const std::string& path : listing.files) {
    try {
      check_manifest_path(path);
    } catch (const Error& bad) {
      listing.problems.push_back({path, bad.what()});
    }
  }
  return listing;
}

ModelManifest sign_model_directory(const std::string& directory, const Ed25519PrivateKey& key,
                                   const SignOptions& options) {
  DirectoryListing listing = list_model_files(directory);
  if (!listing.problems.empty()) {
    const ListingProblem& first = listing.problems.front();
    fail(ErrorCode::kInvalidModel, "cannot sign " + directory + ": " + first.path + ": " +
                                       first.why +
                                       (listing.problems.size() > 1 ? " (and more)" : ""));
  }
  if (listing.files.size() > kMaxManifestFiles) {
    fail(ErrorCode::kInvalidModel, "cannot sign " + directory + ": more than 100000 files");
  }
  ModelManifest manifest;
  manifest.model_id =
      options.model_id.empty() ? fs::canonical(directory).filename().string() : options.model_id;
  manifest.version = options.version;
  manifest.created = options.created.empty() ? rfc3339_utc_now() : options.created;
  std::vector<FileDigest> digests =
      hash_files_parallel(absolute_paths(directory, listing.files), options.hash);
  for (size_t i = 0; i < listing.files.size(); ++i) {
    if (!digests[i].error.empty()) {
      fail(ErrorCode::kInvalidModel,
           "cannot sign " + directory + ": " + listing.files[i] + ": " + digests[i].error);
    }
    manifest.files.push_back({listing.files[i], digests[i].size, digests[i].sha256_hex});
  }
  manifest.signature.public_key_sha256 = key.public_key().fingerprint();
  // Round-trip through the parser: a manifest this build would refuse is never written.
  manifest.signature.value = std::string(88, 'A');
  parse_manifest(manifest_to_json(manifest), "the new manifest");
  manifest.signature.value = base64_encode(key.sign(signed_message(manifest)));
  return manifest;
}

void write_manifest(const std::string& directory, const ModelManifest& manifest) {
  fs::path final_path = fs::path(directory) / kManifestFileName;
  fs::path temporary = final_path;
  temporary += ".tmp";
  std::string text = manifest_to_json(manifest);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  bool ok = fd >= 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  if (fd >= 0) {
    bool synced = ::fsync(fd) == 0;  // both always run: the descriptor is closed either way
    bool closed = ::close(fd) == 0;
    ok = ok && synced && closed;
  }
  std::error_code error;
  if (ok) fs::rename(temporary, final_path, error);
  if (!ok || error) {
    fs::remove(temporary, error);
    fail(ErrorCode::kInvalidArgument, "cannot write " + final_path.string());
  }
}

std::string_view integrity_problem_name(IntegrityProblemKind kind) {
  switch (kind) {
    case IntegrityProblemKind::kMissingManifest:
      return "missing_manifest";
    case IntegrityProblemKind::kMalformedManifest:
      return "malformed_manifest";
    case IntegrityProblemKind::kUntrustedKey:
      return "untrusted_key";
    case IntegrityProblemKind::kBadSignature:
      return "bad_signature";
    case IntegrityProblemKind::kMissingFile:
      return "missing_file";
    case IntegrityProblemKind::kExtraFile:
      return "extra_file";
    case IntegrityProblemKind::kSizeMismatch:
      return "size_mismatch";
    case IntegrityProblemKind::kHashMismatch:
      return "hash_mismatch";
    case IntegrityProblemKind::kUnreadableFile:
      return "unreadable_file";
    case IntegrityProblemKind::kUnsafeFile:
      return "unsafe_file";
  }
  return "unknown";
}

std::string VerificationReport::summary() const {
  if (!ok()) {
    std::string text = problems.front().message;
    if (problems.size() > 1) text += " (and " + std::to_string(problems.size() - 1) + " more)";
    return text;
  }
  return "model " + manifest.model_id + " version " + manifest.version + ": " +
         std::to_string(manifest.files.size()) + " files, " + std::to_string(bytes_hashed) +
         " bytes intact, signed by trusted key " + signer.substr(0, 16);
}

namespace {

using Kind = IntegrityProblemKind;

void add(VerificationReport& report, Kind kind, std::string path, std::string message) {
  report.problems.push_back({kind, std::move(path), std::move(message)});
}

// Reads and parses the manifest; false (with the problem recorded) when that fails.
bool read_manifest(const std::string& manifest_path, VerificationReport& report) {
  std::error_code error;
  if (!fs::exists(manifest_path, error)) {
    add(report, Kind::kMissingManifest, "",
        "missing manifest: " + manifest_path +
            " does not exist (sign the model with autoglm sign)");
    return false;
  }
  try {
    report.manifest =
        parse_manifest(read_file_capped(manifest_path, kMaxManifestBytes), manifest_path);
  } catch (const Error& bad) {
    add(report, Kind::kMalformedManifest, "", bad.what());
    report.manifest = ModelManifest{};
    return false;
  }
  return true;
}

bool check_signature(const std::vector<Ed25519PublicKey>& trusted_keys,
                     VerificationReport& report) {
  const ManifestSignature& signature = report.manifest.signature;
  for (const Ed25519PublicKey& key : trusted_keys) {
    if (key.fingerprint() != signature.public_key_sha256) continue;
    bool valid = false;
    try {
      valid = key.verify(signed_message(report.manifest), base64_decode(signature.value));
    } catch (const Error&) {
      valid = false;  // undecodable: as bad as a wrong signature
    }
    if (!valid) {
      add(report, Kind::kBadSignature, "",
          "bad signature: the manifest does not verify with trusted key " +
              key.fingerprint().substr(0, 16) + " (altered after signing)");
      return false;
    }
    report.signer = key.fingerprint();
    return true;
  }
  add(report, Kind::kUntrustedKey, "",
      "untrusted key: the manifest is signed by key " + signature.public_key_sha256.substr(0, 16) +
          ", which is not among the " + std::to_string(trusted_keys.size()) + " trusted key(s)");
  return false;
}

void compare_files(const std::string& directory, const HashOptions& hash_options,
                   VerificationReport& report) {
  DirectoryListing listing = list_model_files(directory);
  for (const ListingProblem& problem : listing.problems) {
    add(report, Kind::kUnsafeFile, problem.path, problem.path + ": " + problem.why);
  }
  std::map<std::string, const ManifestEntry*> expected;
  for (const ManifestEntry& entry : report.manifest.files) expected[entry.path] = &entry;
  std::vector<const ManifestEntry*> to_hash;
  for (const std::string& path : listing.files) {
    auto it = expected.find(path);
    if (it == expected.end()) {
      add(report, Kind::kExtraFile, path, "extra file: " + path + " is not in the manifest");
      continue;
    }
    std::error_code error;
    uint64_t size = fs::file_size(fs::path(directory) / path, error);
    if (!error && size != it->second->size) {
      add(report, Kind::kSizeMismatch, path,
          "size mismatch: " + path + " has " + std::to_string(size) + " bytes, the manifest says " +
              std::to_string(it->second->size));
    } else {
      to_hash.push_back(it->second);
    }
    expected.erase(it);
  }
  for (const auto& item : expected) {
    const std::string& path = item.first;
    bool unsafe = std::any_of(listing.problems.begin(), listing.problems.end(),
                              [&](const ListingProblem& p) { return p.path == path; });
    if (!unsafe) add(report, Kind::kMissingFile, path, "missing file: " + path);
  }
  std::vector<std::string> paths;
  for (const ManifestEntry* entry : to_hash) paths.push_back((fs::path(directory) / entry->path));
  auto started = std::chrono::steady_clock::now();
  std::vector<FileDigest> digests = hash_files_parallel(paths, hash_options);
  report.hash_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (size_t i = 0; i < to_hash.size(); ++i) {
    const ManifestEntry& entry = *to_hash[i];
    report.bytes_hashed += digests[i].size;
    if (!digests[i].error.empty()) {
      add(report, Kind::kUnreadableFile, entry.path,
          "unreadable file: " + entry.path + ": " + digests[i].error);
    } else if (digests[i].size != entry.size || digests[i].sha256_hex != entry.sha256) {
      add(report, Kind::kHashMismatch, entry.path,
          "hash mismatch: " + entry.path + " has SHA-256 " + digests[i].sha256_hex.substr(0, 16) +
              "..., the manifest says " + entry.sha256.substr(0, 16) + "... (modified)");
    }
  }
}

}  // namespace

VerificationReport check_manifest_signature(const std::string& directory,
                                            const std::vector<Ed25519PublicKey>& trusted_keys,
                                            const std::string& manifest_path) {
  VerificationReport report;
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    add(report, Kind::kMissingFile, "", "model directory " + directory + " not found");
    return report;
  }
  std::string path =
      manifest_path.empty() ? (fs::path(directory) / kManifestFileName).string() : manifest_path;
  if (read_manifest(path, report)) check_signature(trusted_keys, report);
  return report;
}

void check_model_files(const std::string& directory, const HashOptions& hash_options,
                       VerificationReport& report) {
  try {
    compare_files(directory, hash_options, report);
  } catch (const Error& error) {  // the directory vanished between the two stages
    add(report, Kind::kMissingFile, "", error.what());
  }
}

VerificationReport verify_model_directory(const std::string& directory,
                                          const std::vector<Ed25519PublicKey>& trusted_keys,
                                          const VerifyOptions& options) {
  VerificationReport report =
      check_manifest_signature(directory, trusted_keys, options.manifest_path);
  if (report.ok()) check_model_files(directory, options.hash, report);
  return report;
}

}  // namespace autoglm::security
