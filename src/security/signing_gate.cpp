// Signed-model gate for the server (see signing_gate.h).
// Thread ownership: see the header; the async task owns copies of everything it reads.
#include "security/signing_gate.h"

#include "core/error.h"

namespace autoglm::security {

std::vector<Ed25519PublicKey> load_trusted_keys(const std::vector<std::string>& paths) {
  if (paths.empty()) {
    fail(ErrorCode::kInvalidArgument, "signed models are required but no trusted key is given");
  }
  std::vector<Ed25519PublicKey> keys;
  for (const std::string& path : paths) keys.push_back(Ed25519PublicKey::load_pem_file(path));
  return keys;
}

std::future<VerificationReport> start_model_verification(const std::string& directory,
                                                         std::vector<Ed25519PublicKey> trusted_keys,
                                                         const HashOptions& hash_options) {
  VerificationReport report = check_manifest_signature(directory, trusted_keys);
  if (!report.ok()) {
    std::promise<VerificationReport> refused;
    refused.set_value(std::move(report));
    return refused.get_future();
  }
  return std::async(std::launch::async,
                    [directory, hash_options, report = std::move(report)]() mutable {
                      check_model_files(directory, hash_options, report);
                      return std::move(report);
                    });
}

std::vector<std::string> split_key_list(const std::string& list) {
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string part = list.substr(start, end - start);
    size_t first = part.find_first_not_of(" \t");
    size_t last = part.find_last_not_of(" \t");
    if (first != std::string::npos) paths.push_back(part.substr(first, last - first + 1));
    start = end + 1;
  }
  return paths;
}

}  // namespace autoglm::security
