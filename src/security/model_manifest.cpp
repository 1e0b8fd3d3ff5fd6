// The manifest format: canonical form, JSON text, strict parsing (see model_manifest.h and
// docs/SECURITY.md "Model integrity"). Directory listing, signing and verifying are in
// signing_model_dir.cpp. Thread ownership: pure functions, any thread.
#include "security/model_manifest.h"

#include <nlohmann/json.hpp>

#include <ctime>

#include "core/error.h"
#include "core/json_util.h"
#include "core/utf8.h"

namespace autoglm::security {
namespace {

constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxComponentBytes = 255;
constexpr size_t kMaxLabelBytes = 256;
// JSON numbers are exact integers only up to 2^53; a 9-petabyte file is not a model.
constexpr uint64_t kMaxFileSize = (uint64_t{1} << 53) - 1;

[[noreturn]] void malformed(std::string_view origin, const std::string& why) {
  fail(ErrorCode::kInvalidModel, std::string(origin) + ": malformed manifest: " + why);
}

// A JSON-quoted copy for messages; bytes that are not UTF-8 become U+FFFD instead of throwing.
std::string json_quoted(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool has_control_character(std::string_view text) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

bool is_lower_hex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "YYYY-MM-DDTHH:MM:SSZ" with plausible field ranges.
bool is_rfc3339_utc(std::string_view text) {
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  if (text.size() != kShape.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool digit = text[i] >= '0' && text[i] <= '9';
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return false;
  }
  auto number = [&](size_t at) { return (text[at] - '0') * 10 + (text[at + 1] - '0'); };
  return number(5) >= 1 && number(5) <= 12 && number(8) >= 1 && number(8) <= 31 &&
         number(11) <= 23 && number(14) <= 59 && number(17) <= 60;
}

void check_label(const std::string& value, std::string_view field, std::string_view origin) {
  if (value.empty() || value.size() > kMaxLabelBytes || !utf8::is_valid(value) ||
      has_control_character(value)) {
    malformed(origin, std::string(field) + " must be 1-256 bytes of printable UTF-8");
  }
}

const Json& member(const Json& object, std::string_view key, std::string_view origin) {
  auto it = object.find(std::string(key));
  if (it == object.end()) malformed(origin, "missing \"" + std::string(key) + "\"");
  return *it;
}

std::string string_member(const Json& object, std::string_view key, std::string_view origin) {
  const Json& value = member(object, key, origin);
  if (!value.is_string()) malformed(origin, "\"" + std::string(key) + "\" must be a string");
  return value.get<std::string>();
}

void require_exact_keys(const Json& object, std::initializer_list<std::string_view> keys,
                        std::string_view what, std::string_view origin) {
  if (!object.is_object()) malformed(origin, std::string(what) + " must be an object");
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view allowed : keys) known = known || key == allowed;
    if (!known) {
      malformed(origin, "unknown field " + json_quoted(key) + " in " + std::string(what));
    }
  }
}

ManifestEntry parse_entry(const Json& item, std::string_view origin) {
  require_exact_keys(item, {"path", "size", "sha256"}, "a file entry", origin);
  ManifestEntry entry;
  entry.path = string_member(item, "path", origin);
  try {
    check_manifest_path(entry.path);
  } catch (const Error& error) {
    malformed(origin, error.what());
  }
  const Json& size = member(item, "size", origin);
  if (!size.is_number_unsigned() || size.get<uint64_t>() > kMaxFileSize) {
    malformed(origin, "the size of " + json_quoted(entry.path) + " is not a valid byte count");
  }
  entry.size = size.get<uint64_t>();
  entry.sha256 = string_member(item, "sha256", origin);
  if (!is_lower_hex(entry.sha256, 64)) {
    malformed(origin, "the sha256 of " + json_quoted(entry.path) + " is not 64 lower-case hex");
  }
  return entry;
}

std::vector<ManifestEntry> parse_files(const Json& files, std::string_view origin) {
  if (!files.is_array()) malformed(origin, "\"files\" must be an array");
  if (files.size() > kMaxManifestFiles) malformed(origin, "more than 100000 files");
  std::vector<ManifestEntry> entries;
  entries.reserve(files.size());
  for (const Json& item : files) {
    entries.push_back(parse_entry(item, origin));
    // Strictly ascending byte order: one canonical order, and no path listed twice.
    if (entries.size() > 1 && !(entries[entries.size() - 2].path < entries.back().path)) {
      malformed(origin, "paths are not sorted and unique at " + json_quoted(entries.back().path));
    }
  }
  return entries;
}

ManifestSignature parse_signature(const Json& signature, std::string_view origin) {
  require_exact_keys(signature, {"alg", "public_key_sha256", "value"}, "\"signature\"", origin);
  ManifestSignature result;
  result.alg = string_member(signature, "alg", origin);
  if (result.alg != "Ed25519") malformed(origin, "signature alg must be \"Ed25519\"");
  result.public_key_sha256 = string_member(signature, "public_key_sha256", origin);
  if (!is_lower_hex(result.public_key_sha256, 64)) {
    malformed(origin, "public_key_sha256 must be 64 lower-case hex digits");
  }
  result.value = string_member(signature, "value", origin);
  if (result.value.size() != 88) malformed(origin, "signature value must be 88 base64 chars");
  return result;
}

}  // namespace

void check_manifest_path(std::string_view path) {
  auto refuse = [&](const std::string& why) {
    fail(ErrorCode::kInvalidModel, "unsafe path " + json_quoted(std::string(path)) + ": " + why);
  };
  if (path.empty() || path.size() > kMaxPathBytes) refuse("empty or longer than 4096 bytes");
  if (!utf8::is_valid(path)) refuse("not UTF-8");
  if (has_control_character(path) || path.find('\\') != std::string_view::npos) {
    refuse("control character or backslash");
  }
  if (path.front() == '/') refuse("absolute");
  if (path == kManifestFileName) refuse("the manifest cannot list itself");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") refuse("empty, \".\" or \"..\" component");
    if (part.size() > kMaxComponentBytes) refuse("a component longer than 255 bytes");
    start = end + 1;
  }
}

std::string canonical_manifest(const ModelManifest& manifest) {
  // nlohmann::json (not ordered_json) keeps object keys sorted; dump() without indentation
  // writes no whitespace, escapes only '"', '\\' and control characters (which the parser
  // refuses anyway) and leaves UTF-8 as is: RFC 8785 for this set of values.
  nlohmann::json files = nlohmann::json::array();
  for (const ManifestEntry& entry : manifest.files) {
    files.push_back({{"path", entry.path}, {"sha256", entry.sha256}, {"size", entry.size}});
  }
  nlohmann::json body = {{"created", manifest.created},
                         {"files", std::move(files)},
                         {"format", manifest.format},
                         {"model_id", manifest.model_id},
                         {"version", manifest.version}};
  return body.dump();
}

std::string signed_message(const ModelManifest& manifest) {
  return std::string(kSignatureContext) + canonical_manifest(manifest);
}

std::string manifest_to_json(const ModelManifest& manifest) {
  Json files = Json::array();
  for (const ManifestEntry& entry : manifest.files) {
    Json item = Json::object();
    item["path"] = entry.path;
    item["size"] = entry.size;
    item["sha256"] = entry.sha256;
    files.push_back(std::move(item));
  }
  Json document = Json::object();
  document["format"] = manifest.format;
  document["model_id"] = manifest.model_id;
  document["version"] = manifest.version;
  document["created"] = manifest.created;
  document["files"] = std::move(files);
  Json signature = Json::object();
  signature["alg"] = manifest.signature.alg;
  signature["public_key_sha256"] = manifest.signature.public_key_sha256;
  signature["value"] = manifest.signature.value;
  document["signature"] = std::move(signature);
  return document.dump(2) + "\n";
}

ModelManifest parse_manifest(std::string_view text, std::string_view origin) {
  if (text.size() > kMaxManifestBytes) malformed(origin, "larger than 16 MiB");
  Json root = parse_json_limited(text, origin, 8, ErrorCode::kInvalidModel);
  require_exact_keys(root, {"format", "model_id", "version", "created", "files", "signature"},
                     "the manifest", origin);
  ModelManifest manifest;
  const Json& format = member(root, "format", origin);
  if (!format.is_number_integer() || format.get<int64_t>() != kManifestFormat) {
    malformed(origin, "unsupported format (this build reads format 1)");
  }
  manifest.model_id = string_member(root, "model_id", origin);
  check_label(manifest.model_id, "model_id", origin);
  manifest.version = string_member(root, "version", origin);
  check_label(manifest.version, "version", origin);
  manifest.created = string_member(root, "created", origin);
  if (!is_rfc3339_utc(manifest.created)) {
    malformed(origin, "created must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)");
  }
  manifest.files = parse_files(member(root, "files", origin), origin);
  manifest.signature = parse_signature(member(root, "signature", origin), origin);
  return manifest;
}

std::string rfc3339_utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace autoglm::security
