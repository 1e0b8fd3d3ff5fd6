// Parallel file hashing (see parallel_hash.h).
// Thread ownership: workers started and joined inside hash_files_parallel; each writes only its
// own result slots.
#include "security/parallel_hash.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>

#include "security/ed25519_keys.h"

namespace autoglm::security {
namespace {

struct FileCloser {
  int fd;
  ~FileCloser() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t size_or_zero(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<uint64_t>(info.st_size) : 0;
}

}  // namespace

FileDigest hash_one_file(const std::string& path, size_t block_bytes) {
  FileDigest digest;
  FileCloser file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    digest.error = std::strerror(errno);
    return digest;
  }
  ::posix_fadvise(file.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    digest.error = "SHA-256 unavailable";
    return digest;
  }
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[block_bytes]);
  uint64_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(file.fd, buffer.get(), block_bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      digest.error = std::strerror(errno);
      return digest;
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.get(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &length);
  digest.size = offset;
  digest.sha256_hex = to_hex(std::span<const uint8_t>(out, length));
  return digest;
}

std::vector<FileDigest> hash_files_parallel(const std::vector<std::string>& paths,
                                            const HashOptions& options) {
  std::vector<FileDigest> digests(paths.size());
  if (paths.empty()) return digests;
  // Largest first, so that the last file to finish is a small one (better balance).
  std::vector<uint64_t> sizes(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) sizes[i] = size_or_zero(paths[i]);
  std::vector<size_t> order(paths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });

  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, static_cast<int>(paths.size()));
  size_t block = std::max<size_t>(options.block_bytes, 4096);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < order.size(); i = next.fetch_add(1)) {
      digests[order[i]] = hash_one_file(paths[order[i]], block);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (std::thread& worker : workers) worker.join();
  return digests;
}

}  // namespace autoglm::security
