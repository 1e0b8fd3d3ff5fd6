// `autoglm keygen`, `autoglm sign` and `autoglm verify`: Ed25519 key pairs, signing a model
// directory (writing autoglm-manifest.json) and checking one against trusted public keys.
// Verification prints every problem, one `error:` line each, and exits 1.
// Thread ownership: main thread (hashing uses its own pool, see security/parallel_hash.h).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "security/model_manifest.h"

namespace autoglm::cli {
namespace {

namespace sec = autoglm::security;

void register_keygen_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("keygen", "Write a new Ed25519 key pair for model signing");
  auto prefix = std::make_shared<std::string>();
  cmd->add_option("--out", *prefix, "Writes PREFIX.key (private, 0600) and PREFIX.pub")->required();
  cmd->callback([prefix, exit_code] {
    sec::Ed25519PrivateKey key = sec::Ed25519PrivateKey::generate();
    sec::write_key_pair(key, *prefix);
    std::printf("wrote %s.key (private, mode 0600) and %s.pub\npublic key sha256: %s\n",
                prefix->c_str(), prefix->c_str(), key.public_key().fingerprint().c_str());
    *exit_code = 0;
  });
}

struct SignArgs {
  std::string model;
  std::string key;
  sec::SignOptions options;
};

void register_sign_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("sign", "Hash every file of a model directory and sign the list");
  auto args = std::make_shared<SignArgs>();
  cmd->add_option("--model", args->model, "Model directory")->required();
  cmd->add_option("--key", args->key, "Ed25519 private key (PKCS#8 PEM)")->required();
  cmd->add_option("--model-id", args->options.model_id, "Model id (default: directory name)");
  cmd->add_option("--version", args->options.version, "Model version (default: 1)");
  cmd->add_option("--threads", args->options.hash.threads, "Hashing threads (0: all cores)");
  cmd->callback([args, exit_code] {
    sec::Ed25519PrivateKey key = sec::Ed25519PrivateKey::load_pem_file(args->key);
    sec::ModelManifest manifest = sec::sign_model_directory(args->model, key, args->options);
    sec::write_manifest(args->model, manifest);
    uint64_t bytes = 0;
    for (const sec::ManifestEntry& entry : manifest.files) bytes += entry.size;
    std::printf("signed %s: %zu files, %llu bytes, key %s\n", args->model.c_str(),
                manifest.files.size(), static_cast<unsigned long long>(bytes),
                manifest.signature.public_key_sha256.c_str());
    *exit_code = 0;
  });
}

struct VerifyArgs {
  std::string model;
  std::vector<std::string> trusted_keys;
  sec::VerifyOptions options;
};

void register_verify_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("verify", "Check a model directory against its signed manifest");
  auto args = std::make_shared<VerifyArgs>();
  cmd->add_option("--model", args->model, "Model directory")->required();
  cmd->add_option("--trusted-key", args->trusted_keys, "Trusted Ed25519 public key (PEM); repeat")
      ->required();
  cmd->add_option("--manifest", args->options.manifest_path,
                  "Manifest file (default: MODEL/autoglm-manifest.json)");
  cmd->add_option("--threads", args->options.hash.threads, "Hashing threads (0: all cores)");
  cmd->callback([args, exit_code] {
    std::vector<sec::Ed25519PublicKey> keys;
    for (const std::string& path : args->trusted_keys) {
      keys.push_back(sec::Ed25519PublicKey::load_pem_file(path));
    }
    sec::VerificationReport report = sec::verify_model_directory(args->model, keys, args->options);
    if (!report.ok()) {
      for (const sec::IntegrityProblem& problem : report.problems) {
        std::fprintf(stderr, "error: %s: %s\n",
                     std::string(sec::integrity_problem_name(problem.kind)).c_str(),
                     problem.message.c_str());
      }
      std::fprintf(stderr, "%s: NOT verified (%zu problem(s))\n", args->model.c_str(),
                   report.problems.size());
      *exit_code = 1;
      return;
    }
    double gbps = report.hash_seconds > 0 ? report.bytes_hashed / report.hash_seconds / 1e9 : 0;
    std::printf("%s: verified: %s (hashed in %.3f s, %.2f GB/s)\n", args->model.c_str(),
                report.summary().c_str(), report.hash_seconds, gbps);
    *exit_code = 0;
  });
}

}  // namespace

void register_signing(CLI::App& app, int* exit_code) {
  register_keygen_command(app, exit_code);
  register_sign_command(app, exit_code);
  register_verify_command(app, exit_code);
}

}  // namespace autoglm::cli
