// SHA-256 of many files at once, for model manifests. SHA-256 is sequential within a file, so
// the parallelism is across files (safetensors shards): a pool of threads sized to the cores
// takes the largest files first, each read sequentially in large blocks (pread into one buffer
// per thread, POSIX_FADV_SEQUENTIAL) so the kernel reads ahead and the pages stay in the page
// cache for the loader's mmap. Thread ownership: hash_files_parallel owns its worker threads
// and joins them before returning; it may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace autoglm::security {

struct FileDigest {
  uint64_t size = 0;       // bytes actually read
  std::string sha256_hex;  // lower-case hex; empty when `error` is set
  std::string error;       // why the file could not be read; empty on success
};

struct HashOptions {
  int threads = 0;                       // 0: std::thread::hardware_concurrency()
  size_t block_bytes = size_t{8} << 20;  // one read
};

// One digest per path, in the order given. Never throws for an unreadable file: the digest
// carries the error, so that a verifier can report every problem at once.
std::vector<FileDigest> hash_files_parallel(const std::vector<std::string>& paths,
                                            const HashOptions& options = {});

FileDigest hash_one_file(const std::string& path, size_t block_bytes);

}  // namespace autoglm::security
