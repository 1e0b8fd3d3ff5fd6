// See audit_file.h. Thread ownership: any thread.
#include "security/audit_file.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "security/audit_log.h"

namespace autoglm::security {
namespace {

// Records are capped well below this (audit_log.cpp cuts long fields), so the last whole line
// always fits in one window.
constexpr uint64_t kTailWindow = 64 * 1024;

// The N of "base.N", or -1.
int rotation_index(const std::string& name, const std::string& base) {
  if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0 ||
      name[base.size()] != '.') {
    return -1;
  }
  int index = -1;
  const char* first = name.data() + base.size() + 1;
  const char* last = name.data() + name.size();
  auto [end, ec] = std::from_chars(first, last, index);
  return ec == std::errc() && end == last && index > 0 ? index : -1;
}

bool has_rotation_suffix(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot != std::string::npos && rotation_index(name, name.substr(0, dot)) > 0;
}

// base.N ... base.1, base: the ones that exist.
std::vector<std::string> chain_files(const std::filesystem::path& base) {
  std::vector<std::pair<int, std::string>> rotated;
  const std::filesystem::path dir = base.has_parent_path() ? base.parent_path() : ".";
  const std::string base_name = base.filename().string();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const int index = rotation_index(entry.path().filename().string(), base_name);
    if (index > 0 && entry.is_regular_file()) rotated.emplace_back(index, entry.path().string());
  }
  std::sort(rotated.begin(), rotated.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> files;
  for (auto& [index, path] : rotated) files.push_back(std::move(path));
  if (std::filesystem::is_regular_file(base)) files.push_back(base.string());
  return files;
}

}  // namespace

AuditTail read_audit_tail(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) fail(ErrorCode::kNotFound, "cannot read audit log " + path);
  const auto size = static_cast<uint64_t>(file.tellg());
  AuditTail tail;
  if (size == 0) return tail;
  const uint64_t window = std::min(size, kTailWindow);
  std::string bytes(window, '\0');
  file.seekg(static_cast<std::streamoff>(size - window));
  file.read(bytes.data(), static_cast<std::streamsize>(window));
  const size_t last_newline = bytes.rfind('\n');
  if (last_newline == std::string::npos) {
    if (window < size) fail(ErrorCode::kInvalidArgument, path + " is not an audit log");
    tail.partial_bytes = size;  // one partial line and nothing before it
    return tail;
  }
  tail.partial_bytes = bytes.size() - last_newline - 1;
  const size_t line_start =
      last_newline == 0 ? std::string::npos : bytes.rfind('\n', last_newline - 1);
  if (line_start == std::string::npos && window < size) {
    fail(ErrorCode::kInvalidArgument, path + ": its last record is too long for an audit record");
  }
  const size_t begin = line_start == std::string::npos ? 0 : line_start + 1;
  const std::string line = bytes.substr(begin, last_newline - begin);
  const auto record = nlohmann::json::parse(line, nullptr, false);
  if (!record.is_object() || !record.contains("seq") || !record["seq"].is_number_unsigned() ||
      !record.contains("prev_hash")) {
    fail(ErrorCode::kInvalidArgument,
         path + " does not end with an audit record; refusing to append to it");
  }
  tail.found = true;
  tail.seq = record["seq"].get<uint64_t>();
  tail.hash = sha256_hex(line);
  return tail;
}

std::vector<std::string> expand_audit_paths(const std::vector<std::string>& arguments) {
  std::vector<std::string> files;
  for (const std::string& argument : arguments) {
    const std::filesystem::path path(argument);
    if (std::filesystem::is_directory(path)) {
      std::vector<std::string> bases;
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file() && !has_rotation_suffix(name)) bases.push_back(name);
      }
      std::sort(bases.begin(), bases.end());
      for (const std::string& base : bases) {
        for (std::string& file : chain_files(path / base)) files.push_back(std::move(file));
      }
    } else if (std::filesystem::is_regular_file(path)) {
      files.push_back(argument);
    } else {
      std::vector<std::string> chain = chain_files(path);
      if (chain.empty()) fail(ErrorCode::kNotFound, "no audit log at " + argument);
      for (std::string& file : chain) files.push_back(std::move(file));
    }
  }
  return files;
}

}  // namespace autoglm::security
