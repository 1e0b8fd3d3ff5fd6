// AES-256-GCM sealing of response-cache values for the shared Redis level (L2), with key ids so
// that keys can be rotated: the newest key seals, every listed key opens. A sealed value is
//   kid_length (1 byte) || kid || nonce (12 bytes) || ciphertext || tag (16 bytes)
// and the cache key is bound in as additional authenticated data, so a value copied to another
// key (another tenant's, say) fails to open just as a tampered one does.
// Thread ownership: CacheKeyRing is immutable after construction and shareable; seal/open are
// pure functions (OpenSSL EVP contexts are made per call). Owner: the "cache" thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::server::cache {

inline constexpr size_t kCacheKeyBytes = 32;  // AES-256
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kMaxKeyIdBytes = 64;

struct CacheKeyEntry {
  std::string id;  // 1..64 of [A-Za-z0-9_.-]
  std::array<uint8_t, kCacheKeyBytes> key{};
};

class CacheKeyRing {
 public:
  // Lines (or comma-separated entries) "kid:<64 hex digits>"; blank lines and '#' comments are
  // skipped. The LAST entry is the newest and seals. Throws Error(kInvalidArgument) naming
  // `origin` and the line for a malformed entry, a repeated kid, or no entry at all; the
  // message never contains key material.
  static CacheKeyRing parse(std::string_view text, std::string_view origin);
  static CacheKeyRing from_file(const std::string& path);

  const CacheKeyEntry& newest() const { return entries_.back(); }
  const CacheKeyEntry* find(std::string_view id) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<CacheKeyEntry> entries_;
};

// Seals `plaintext` with the ring's newest key and a fresh random nonce.
std::string seal_value(const CacheKeyRing& keys, std::string_view plaintext, std::string_view aad);
// The plaintext, or nullopt when the value is malformed, names a kid the ring does not hold, or
// fails authentication (tampered, or sealed under another aad).
std::optional<std::string> open_value(const CacheKeyRing& keys, std::string_view sealed,
                                      std::string_view aad);

}  // namespace autoglm::server::cache
