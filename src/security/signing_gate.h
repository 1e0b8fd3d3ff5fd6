// The gate a server puts in front of model loading when signed models are required: the cheap
// checks (trusted keys readable, manifest present, well-formed and signed by a trusted key) run
// at once, then the file hashing runs on its own threads while the loader reads the same files,
// so verification adds little to the load time. The caller commits the loaded model only when
// the report is clean. Thread ownership: start_model_verification runs on the caller's thread;
// the returned future's work runs on a thread of its own (std::async), which hashes on a pool.
#pragma once

#include <future>
#include <string>
#include <vector>

#include "security/model_manifest.h"

namespace autoglm::security {

// Throws Error(kInvalidArgument) when no key path is given or a key cannot be read.
std::vector<Ed25519PublicKey> load_trusted_keys(const std::vector<std::string>& paths);

// The returned future is ready at once when the manifest is missing, malformed or not signed by
// a trusted key (the report says which); otherwise it becomes ready when every file is hashed.
std::future<VerificationReport> start_model_verification(const std::string& directory,
                                                         std::vector<Ed25519PublicKey> trusted_keys,
                                                         const HashOptions& hash_options = {});

// Splits "a.pub, b.pub" (the trusted_keys setting) into paths; empty parts are dropped.
std::vector<std::string> split_key_list(const std::string& list);

}  // namespace autoglm::security
