// Ed25519 over OpenSSL EVP (see ed25519_keys.h). OpenSSL's error queue is drained into the
// autoglm::Error message so that a bad key file says why.
// Thread ownership: pure functions and immutable keys; any thread.
#include "security/ed25519_keys.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace autoglm::security {

void detail::EvpKeyDeleter::operator()(void* key) const noexcept {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key));
}

namespace {

constexpr size_t kMaxKeyFileBytes = 64 * 1024;

EVP_PKEY* evp(const detail::EvpKeyHandle& handle) {
  return static_cast<EVP_PKEY*>(handle.get());
}

std::string openssl_reason() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "not a PEM key";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  return buffer;
}

struct BioDeleter {
  void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
using BioHandle = std::unique_ptr<BIO, BioDeleter>;

struct MdContextDeleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using MdContext = std::unique_ptr<EVP_MD_CTX, MdContextDeleter>;

BioHandle memory_bio(std::string_view pem) {
  BioHandle bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail(ErrorCode::kInternal, "BIO_new_mem_buf failed");
  return bio;
}

// No passphrase prompt ever: an encrypted key is an error, never a hang on the terminal.
int refuse_passphrase(char*, int, int, void*) {
  return -1;
}

void require_ed25519(EVP_PKEY* key, std::string_view origin) {
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    fail(ErrorCode::kInvalidArgument,
         std::string(origin) + ": not an Ed25519 key (model signing uses Ed25519 only)");
  }
}

std::string pem_of(const detail::EvpKeyHandle& key, bool private_key) {
  BioHandle bio(BIO_new(BIO_s_mem()));
  int ok = private_key ? PEM_write_bio_PrivateKey(bio.get(), evp(key), nullptr, nullptr, 0, nullptr,
                                                  nullptr)
                       : PEM_write_bio_PUBKEY(bio.get(), evp(key));
  if (ok != 1) fail(ErrorCode::kInternal, "cannot write PEM: " + openssl_reason());
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string read_key_file(const std::string& path) {
  try {
    return read_file_capped(path, kMaxKeyFileBytes);
  } catch (const Error& error) {
    fail(ErrorCode::kInvalidArgument, "cannot read key file " + path + ": " + error.what());
  }
}

void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    fail(ErrorCode::kInvalidArgument,
         "cannot create " + path + ": " + std::strerror(errno) +
             (errno == EEXIST ? " (refusing to overwrite a key)" : ""));
  }
  // The umask may have widened nothing but may have narrowed; set the mode exactly.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok) fail(ErrorCode::kInvalidArgument, "cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

Ed25519PublicKey Ed25519PublicKey::from_pem(std::string_view pem, std::string_view origin) {
  BioHandle bio = memory_bio(pem);
  detail::EvpKeyHandle key(PEM_read_bio_PUBKEY(bio.get(), nullptr, refuse_passphrase, nullptr),
                           detail::EvpKeyDeleter{});
  if (!key) {
    fail(ErrorCode::kInvalidArgument,
         std::string(origin) + ": not a PEM public key (" + openssl_reason() + ")");
  }
  require_ed25519(evp(key), origin);
  Ed25519PublicKey result;
  size_t length = 32;
  result.raw_.resize(length);
  if (EVP_PKEY_get_raw_public_key(evp(key), result.raw_.data(), &length) != 1 || length != 32) {
    fail(ErrorCode::kInvalidArgument, std::string(origin) + ": unreadable Ed25519 public key");
  }
  result.key_ = std::move(key);
  result.fingerprint_ = sha256_hex(
      std::string_view(reinterpret_cast<const char*>(result.raw_.data()), result.raw_.size()));
  return result;
}

Ed25519PublicKey Ed25519PublicKey::load_pem_file(const std::string& path) {
  return from_pem(read_key_file(path), path);
}

bool Ed25519PublicKey::verify(std::string_view message, std::span<const uint8_t> signature) const {
  if (signature.size() != 64) return false;
  MdContext ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, evp(key_)) != 1) {
    fail(ErrorCode::kInternal, "EVP_DigestVerifyInit failed: " + openssl_reason());
  }
  int ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

std::string Ed25519PublicKey::to_pem() const {
  return pem_of(key_, false);
}

Ed25519PrivateKey Ed25519PrivateKey::generate() {
  EVP_PKEY* raw = nullptr;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    fail(ErrorCode::kInternal, "Ed25519 key generation failed: " + openssl_reason());
  }
  detail::EvpKeyHandle key(raw, detail::EvpKeyDeleter{});
  return from_pem(pem_of(key, true), "generated key");
}

Ed25519PrivateKey Ed25519PrivateKey::from_pem(std::string_view pem, std::string_view origin) {
  BioHandle bio = memory_bio(pem);
  detail::EvpKeyHandle key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr),
                           detail::EvpKeyDeleter{});
  if (!key) {
    fail(ErrorCode::kInvalidArgument,
         std::string(origin) + ": not an unencrypted PEM private key (" + openssl_reason() + ")");
  }
  require_ed25519(evp(key), origin);
  Ed25519PrivateKey result;
  result.key_ = std::move(key);
  result.public_key_ = Ed25519PublicKey::from_pem(pem_of(result.key_, false), origin);
  return result;
}

Ed25519PrivateKey Ed25519PrivateKey::load_pem_file(const std::string& path) {
  return from_pem(read_key_file(path), path);
}

std::vector<uint8_t> Ed25519PrivateKey::sign(std::string_view message) const {
  MdContext ctx(EVP_MD_CTX_new());
  std::vector<uint8_t> signature(64);
  size_t length = signature.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, evp(key_)) != 1 ||
      EVP_DigestSign(ctx.get(), signature.data(), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      length != 64) {
    fail(ErrorCode::kInternal, "Ed25519 signing failed: " + openssl_reason());
  }
  return signature;
}

std::string Ed25519PrivateKey::to_pem() const {
  return pem_of(key_, true);
}

void write_key_pair(const Ed25519PrivateKey& key, const std::string& prefix) {
  std::string private_path = prefix + ".key";
  std::string public_path = prefix + ".pub";
  if (::access(public_path.c_str(), F_OK) == 0) {
    fail(ErrorCode::kInvalidArgument, public_path + " exists (refusing to overwrite a key)");
  }
  write_new_file(private_path, key.to_pem(), 0600);
  write_new_file(public_path, key.public_key().to_pem(), 0644);
}

std::string base64_encode(std::span<const uint8_t> bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3), '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), bytes.data(),
                               static_cast<int>(bytes.size()));
  text.resize(static_cast<size_t>(length));
  return text;
}

std::vector<uint8_t> base64_decode(std::string_view text) {
  auto is_alphabet = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  };
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  bool valid = text.size() % 4 == 0 && text.size() <= (1u << 20);
  for (size_t i = 0; valid && i < text.size() - padding; ++i) valid = is_alphabet(text[i]);
  if (!valid) fail(ErrorCode::kInvalidArgument, "not padded standard base64");
  std::vector<uint8_t> bytes(text.size() / 4 * 3);
  int length = EVP_DecodeBlock(bytes.data(), reinterpret_cast<const unsigned char*>(text.data()),
                               static_cast<int>(text.size()));
  if (length < 0) fail(ErrorCode::kInvalidArgument, "not padded standard base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  bytes.resize(static_cast<size_t>(length) - padding);
  // Canonical form only: a re-encoding must give the same text (no stray bits in the padding).
  if (base64_encode(bytes) != text) fail(ErrorCode::kInvalidArgument, "non-canonical base64");
  return bytes;
}

}  // namespace autoglm::security
