// See cache_crypto.h. OpenSSL EVP AES-256-GCM, 96-bit random nonces (RAND_bytes), 128-bit tags.
// Owner: the "cache" thread.
#include "server/cache/cache_crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/error.h"

namespace autoglm::server::cache {
namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext new_context() {
  CipherContext context(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!context) fail(ErrorCode::kInternal, "response cache: EVP_CIPHER_CTX_new failed");
  return context;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool valid_key_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdBytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// One "kid:hex" entry; the error names where it is, never its content (it may be a key).
CacheKeyEntry parse_entry(std::string_view entry, std::string_view where) {
  const size_t colon = entry.find(':');
  const std::string_view id = colon == std::string_view::npos ? "" : trim(entry.substr(0, colon));
  const std::string_view hex = colon == std::string_view::npos ? "" : trim(entry.substr(colon + 1));
  if (!valid_key_id(id)) {
    fail(ErrorCode::kInvalidArgument, std::string(where) +
                                          ": expected 'kid:<64 hex digits>' with a kid of 1-64 of "
                                          "[A-Za-z0-9_.-]");
  }
  CacheKeyEntry parsed;
  parsed.id = std::string(id);
  bool ok = hex.size() == 2 * kCacheKeyBytes;
  for (size_t i = 0; ok && i < kCacheKeyBytes; ++i) {
    const int hi = hex_digit(hex[2 * i]);
    const int lo = hex_digit(hex[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    parsed.key[i] = static_cast<uint8_t>(ok ? hi * 16 + lo : 0);
  }
  if (!ok) {
    fail(ErrorCode::kInvalidArgument,
         std::string(where) + ": key '" + parsed.id + "' must be 64 hex digits (32 bytes)");
  }
  return parsed;
}

}  // namespace

CacheKeyRing CacheKeyRing::parse(std::string_view text, std::string_view origin) {
  CacheKeyRing ring;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find_first_of("\n,");
    const std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    const std::string_view entry = trim(raw);
    if (entry.empty() || entry.front() == '#') continue;
    const std::string where = std::string(origin) + " entry " + std::to_string(line_number);
    CacheKeyEntry parsed = parse_entry(entry, where);
    if (ring.find(parsed.id) != nullptr) {
      fail(ErrorCode::kInvalidArgument, where + ": key id '" + parsed.id + "' is listed twice");
    }
    ring.entries_.push_back(std::move(parsed));
  }
  if (ring.entries_.empty()) {
    fail(ErrorCode::kInvalidArgument, std::string(origin) + ": no cache key (want 'kid:<hex>')");
  }
  return ring;
}

CacheKeyRing CacheKeyRing::from_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(ErrorCode::kNotFound, "cannot read cache key file " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return parse(text.str(), "cache key file " + path);
}

const CacheKeyEntry* CacheKeyRing::find(std::string_view id) const {
  for (const CacheKeyEntry& entry : entries_) {
    if (entry.id == id) return &entry;
  }
  return nullptr;
}

std::string seal_value(const CacheKeyRing& keys, std::string_view plaintext, std::string_view aad) {
  const CacheKeyEntry& key = keys.newest();
  std::string sealed;
  sealed.reserve(1 + key.id.size() + kNonceBytes + plaintext.size() + kTagBytes);
  sealed.push_back(static_cast<char>(key.id.size()));
  sealed += key.id;
  const size_t nonce_at = sealed.size();
  sealed.resize(nonce_at + kNonceBytes);
  auto* nonce = reinterpret_cast<unsigned char*>(sealed.data() + nonce_at);
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    fail(ErrorCode::kInternal, "response cache: RAND_bytes failed");
  }
  const size_t body_at = sealed.size();
  sealed.resize(body_at + plaintext.size() + kTagBytes);
  auto* out = reinterpret_cast<unsigned char*>(sealed.data() + body_at);
  CipherContext ctx = new_context();
  int written = 0;
  int final_written = 0;
  const bool ok =
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.key.data(), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &written,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), out, &written,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), out + written, &final_written) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out + plaintext.size()) == 1;
  if (!ok) fail(ErrorCode::kInternal, "response cache: AES-256-GCM encryption failed");
  return sealed;
}

std::optional<std::string> open_value(const CacheKeyRing& keys, std::string_view sealed,
                                      std::string_view aad) {
  if (sealed.empty()) return std::nullopt;
  const size_t id_size = static_cast<uint8_t>(sealed[0]);
  if (sealed.size() < 1 + id_size + kNonceBytes + kTagBytes) return std::nullopt;
  const CacheKeyEntry* key = keys.find(sealed.substr(1, id_size));
  if (key == nullptr) return std::nullopt;
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data() + 1 + id_size);
  const std::string_view body = sealed.substr(1 + id_size + kNonceBytes);
  const size_t text_size = body.size() - kTagBytes;
  std::string plaintext(text_size, '\0');
  std::array<unsigned char, kTagBytes> tag{};
  std::copy(body.end() - kTagBytes, body.end(), tag.begin());
  CipherContext ctx = new_context();
  int written = 0;
  int final_written = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key->key.data(), nonce) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &written,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &written,
                        reinterpret_cast<const unsigned char*>(body.data()),
                        static_cast<int>(text_size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()) + written,
                          &final_written) == 1;
  if (!ok) return std::nullopt;
  return plaintext;
}

}  // namespace autoglm::server::cache
