// Read-only memory map of a whole file (weights are never copied onto the heap), and a
// bounded whole-file read for small text files (configs, tokenizers, templates).
// Thread ownership: a MappedFile is immutable after open and may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace autoglm {

class MappedFile {
 public:
  // Throws Error(kNotFound / kInvalidModel) naming `path` on failure.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole file into a string, refusing files larger than `max_bytes`.
std::string read_file_capped(const std::string& path, size_t max_bytes);

}  // namespace autoglm
