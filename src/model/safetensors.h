// Safetensors parsing and validation for hostile files. The format: an 8-byte little-endian
// header length N, N bytes of JSON header ({name: {dtype, shape, data_offsets}} plus an optional
// "__metadata__" of string -> string), then the data section. parse_safetensors() checks every
// claim the header makes against the buffer before anything reads tensor bytes; the file loader
// and the fuzz target call the same function. Thread ownership: SafetensorsFile is immutable
// after open and may be read from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace autoglm {

// The same cap as Hugging Face's safetensors (MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
inline constexpr size_t kMaxTensorRank = 8;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t element_count = 0;
  uint64_t begin = 0;  // byte offsets relative to the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsTensor> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data section in the buffer: 8 + N
};

// Validates `bytes` as a whole safetensors file. Throws Error(kInvalidModel or kUnsupported,
// "<source>: tensor '<name>': <what is wrong>") (or "<source>: <what>" for file-level faults).
SafetensorsHeader parse_safetensors(std::span<const uint8_t> bytes, const std::string& source);

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<SafetensorsTensor>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // Start of a tensor's bytes inside the mapping (valid while this object lives).
  const void* data(const SafetensorsTensor& t) const {
    return file_.bytes().data() + header_.data_start + t.begin;
  }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

std::string format_shape(const std::vector<int64_t>& shape);

}  // namespace autoglm
