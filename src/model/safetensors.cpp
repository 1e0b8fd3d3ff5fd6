// See safetensors.h. Order of checks matters: the header length is checked against the cap and
// the buffer before any allocation; the JSON is parsed with a depth cap and a duplicate-key scan;
// every tensor's byte range is checked before any view of tensor data is formed.
#include "model/safetensors.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "model/printable.h"

namespace autoglm {
namespace {

// A safetensors header is {name: {dtype, shape: [...], data_offsets: [...]}}: depth 3.
constexpr int kMaxHeaderDepth = 4;

[[noreturn]] void fail_tensor(const std::string& source, const std::string& name,
                              const std::string& what) {
  fail(ErrorCode::kInvalidModel, source + ": tensor '" + printable(name) + "': " + what);
}

// SAX pass that rejects duplicate keys in any object (nlohmann would silently keep one of
// them, so a file could show different tensors to us and to other readers) and deep nesting.
class DuplicateKeyScan {
 public:
  explicit DuplicateKeyScan(std::string source) : source_(std::move(source)) {}
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(int64_t) { return true; }
  bool number_unsigned(uint64_t) { return true; }
  bool number_float(double, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(size_t) { return push(true); }
  bool start_array(size_t) { return push(false); }
  bool end_object() { return pop(); }
  bool end_array() { return pop(); }
  bool key(std::string& k) {
    if (!scopes_.back().second.insert(k).second) {
      const std::string where =
          scopes_.size() == 1 ? "tensor '" + printable(k) + "'" : "key '" + printable(k) + "'";
      fail(ErrorCode::kInvalidModel, source_ + ": " + where + ": duplicate name in header");
    }
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
    fail(ErrorCode::kInvalidModel, source_ + ": header is not valid JSON: " + e.what());
  }

 private:
  bool push(bool is_object) {
    if (scopes_.size() >= static_cast<size_t>(kMaxHeaderDepth)) {
      fail(ErrorCode::kInvalidModel,
           source_ + ": header JSON nested deeper than " + std::to_string(kMaxHeaderDepth));
    }
    scopes_.emplace_back(is_object, std::set<std::string>{});
    return true;
  }
  bool pop() {
    scopes_.pop_back();
    return true;
  }
  std::string source_;
  std::vector<std::pair<bool, std::set<std::string>>> scopes_;
};

// A JSON value that is a non-negative integer, as uint64.
bool as_u64(const Json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

DType parse_dtype(const Json& entry, const std::string& source, const std::string& name) {
  auto it = entry.find("dtype");
  if (it == entry.end() || !it->is_string()) fail_tensor(source, name, "missing string 'dtype'");
  const std::string s = it->get<std::string>();
  const auto dtype = parse_weight_dtype(s);
  if (!dtype) {
    fail(ErrorCode::kUnsupported, source + ": tensor '" + printable(name) + "': dtype '" +
                                      printable(s) +
                                      "' is not supported (accepted: F32, F16, BF16)");
  }
  return *dtype;
}

void parse_shape(const Json& entry, const std::string& source, SafetensorsTensor& t) {
  auto it = entry.find("shape");
  if (it == entry.end() || !it->is_array()) fail_tensor(source, t.name, "missing list 'shape'");
  if (it->size() > kMaxTensorRank) {
    fail_tensor(
        source, t.name,
        "rank " + std::to_string(it->size()) + " exceeds " + std::to_string(kMaxTensorRank));
  }
  uint64_t count = 1;
  for (size_t i = 0; i < it->size(); ++i) {
    uint64_t dim = 0;
    if (!as_u64((*it)[i], &dim) || dim > static_cast<uint64_t>(INT64_MAX)) {
      fail_tensor(source, t.name, "shape[" + std::to_string(i) + "] is not a non-negative integer");
    }
    if (__builtin_mul_overflow(count, dim, &count)) {
      fail_tensor(source, t.name, "element count of shape overflows 64 bits");
    }
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  t.element_count = count;
}

void parse_offsets(const Json& entry, const std::string& source, SafetensorsTensor& t) {
  auto it = entry.find("data_offsets");
  if (it == entry.end() || !it->is_array() || it->size() != 2 || !as_u64((*it)[0], &t.begin) ||
      !as_u64((*it)[1], &t.end)) {
    fail_tensor(source, t.name, "'data_offsets' must be [begin, end] of non-negative integers");
  }
  if (t.end < t.begin) fail_tensor(source, t.name, "data_offsets end is before begin");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(t.element_count, dtype_size(t.dtype), &bytes)) {
    fail_tensor(source, t.name, "byte size of shape overflows 64 bits");
  }
  if (bytes != t.end - t.begin) {
    fail_tensor(source, t.name,
                "shape " + format_shape(t.shape) + " x " + std::string(dtype_name(t.dtype)) +
                    " is " + std::to_string(bytes) + " bytes but data_offsets span " +
                    std::to_string(t.end - t.begin));
  }
}

void parse_metadata(const Json& value, const std::string& source, SafetensorsHeader& out) {
  if (!value.is_object())
    fail(ErrorCode::kInvalidModel, source + ": '__metadata__' is not an object");
  for (const auto& [k, v] : value.items()) {
    if (!v.is_string()) {
      fail(ErrorCode::kInvalidModel,
           source + ": '__metadata__' value of '" + printable(k) + "' is not a string");
    }
    out.metadata[k] = v.get<std::string>();
  }
}

// Tensors sorted by offset must tile the data section exactly: from 0, no gaps, no overlaps,
// ending at its last byte (the same rule as Hugging Face's reader).
void check_layout(std::vector<SafetensorsTensor>& tensors, uint64_t data_size,
                  const std::string& source) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const SafetensorsTensor& t : tensors) {
    if (t.begin < expected) {
      fail_tensor(source, t.name,
                  "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                      "] overlap the previous tensor");
    }
    if (t.begin > expected) {
      fail_tensor(source, t.name,
                  "gap in the data section before offset " + std::to_string(t.begin) +
                      " (previous tensor ends at " + std::to_string(expected) + ")");
    }
    if (t.end > data_size) {
      fail_tensor(source, t.name,
                  "data_offsets end " + std::to_string(t.end) +
                      " is past the end of the data section (" + std::to_string(data_size) +
                      " bytes)");
    }
    expected = t.end;
  }
  if (expected != data_size) {
    fail(ErrorCode::kInvalidModel, source + ": data section is " + std::to_string(data_size) +
                                       " bytes but tensors cover only " + std::to_string(expected));
  }
}

uint64_t read_header_length(std::span<const uint8_t> bytes, const std::string& source) {
  if (bytes.size() < 8) {
    fail(ErrorCode::kInvalidModel, source + ": file is " + std::to_string(bytes.size()) +
                                       " bytes, too short for a safetensors header length");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
  if (n > kMaxSafetensorsHeaderBytes) {
    fail(ErrorCode::kInvalidModel, source + ": header length " + std::to_string(n) +
                                       " exceeds the limit of " +
                                       std::to_string(kMaxSafetensorsHeaderBytes));
  }
  if (n > bytes.size() - 8) {
    fail(ErrorCode::kInvalidModel, source + ": header length " + std::to_string(n) +
                                       " runs past the end of the file (" +
                                       std::to_string(bytes.size()) + " bytes)");
  }
  if (n < 2) fail(ErrorCode::kInvalidModel, source + ": header is empty");
  return n;
}

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const uint8_t> bytes, const std::string& source) {
  const uint64_t n = read_header_length(bytes, source);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  if (text.front() != '{')
    fail(ErrorCode::kInvalidModel, source + ": header does not start with '{'");
  DuplicateKeyScan scan(source);
  Json::sax_parse(text.begin(), text.end(), &scan);
  const Json header = parse_json_limited(text, source + ": header", kMaxHeaderDepth);

  SafetensorsHeader out;
  out.data_start = 8 + n;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      parse_metadata(entry, source, out);
      continue;
    }
    if (!entry.is_object()) fail_tensor(source, name, "entry is not an object");
    SafetensorsTensor t;
    t.name = name;
    t.dtype = parse_dtype(entry, source, name);
    parse_shape(entry, source, t);
    parse_offsets(entry, source, t);
    out.tensors.push_back(std::move(t));
  }
  check_layout(out.tensors, bytes.size() - out.data_start, source);
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  f.header_ = parse_safetensors(f.file_.bytes(), path);
  return f;
}

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace autoglm
