// See audit_verify.h. Every line is read once into a compact summary; the chain is then checked
// record by record, looking ahead only to classify the first failure.
// Thread ownership: any thread.
#include "security/audit_verify.h"

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "security/audit_log.h"

namespace autoglm::security {
namespace {

constexpr std::array<std::string_view, 13> kFields = {
    "timestamp", "seq",    "user_id",     "action",        "resource",
    "client_ip", "status", "http_status", "prompt_tokens", "completion_tokens",
    "trace_id",  "detail", "prev_hash"};

struct LineSummary {
  size_t file = 0;
  uint64_t line = 0;
  bool terminated = true;  // ended with '\n'
  bool valid = false;      // a record with exactly the audit fields
  uint64_t seq = 0;
  std::string prev_hash;
  std::string hash;
  std::string action;
  std::string timestamp;
};

bool is_record(const nlohmann::ordered_json& record) {
  if (!record.is_object() || record.size() != kFields.size()) return false;
  size_t i = 0;
  for (const auto& [key, value] : record.items()) {
    if (key != kFields[i++]) return false;
  }
  return record["seq"].is_number_unsigned() && record["prev_hash"].is_string() &&
         record["action"].is_string() && record["timestamp"].is_string();
}

LineSummary summarize(size_t file, uint64_t line_number, const std::string& line, bool ended) {
  LineSummary s;
  s.file = file;
  s.line = line_number;
  s.terminated = ended;
  s.hash = sha256_hex(line);
  const auto record = nlohmann::ordered_json::parse(line, nullptr, false);
  if (!is_record(record)) return s;
  s.valid = true;
  s.seq = record["seq"].get<uint64_t>();
  s.prev_hash = record["prev_hash"].get<std::string>();
  s.action = record["action"].get<std::string>();
  s.timestamp = record["timestamp"].get<std::string>();
  return s;
}

std::vector<LineSummary> read_lines(const std::vector<std::string>& files) {
  std::vector<LineSummary> lines;
  for (size_t f = 0; f < files.size(); ++f) {
    std::ifstream in(files[f], std::ios::binary);
    if (!in) fail(ErrorCode::kNotFound, "cannot read audit log " + files[f]);
    std::string line;
    uint64_t number = 0;
    while (std::getline(in, line)) {
      lines.push_back(summarize(f, ++number, line, !in.eof()));
    }
  }
  return lines;
}

struct Finding {
  size_t index;  // into lines
  AuditDefect defect;
  std::string reason;
};

// The first record of the set: a new chain (seq 1 from zeros) or a rotated file's first record.
std::optional<Finding> check_first(const LineSummary& s, AuditVerifyReport& report) {
  report.first_prev_hash = s.prev_hash;
  if (s.seq == 1 && s.prev_hash == kGenesisHash) return std::nullopt;
  if (s.action == kActionRotated) {
    report.notes.push_back("the chain continues from an older file not given (seq " +
                           std::to_string(s.seq) + ", prev_hash " + s.prev_hash + ")");
    return std::nullopt;
  }
  if (s.prev_hash == kGenesisHash) return Finding{0, AuditDefect::kEdited, "seq is not 1"};
  return Finding{0, AuditDefect::kDeleted,
                 "the records before seq " + std::to_string(s.seq) + " are missing"};
}

// Record i does not follow record `prev` (both valid).
Finding classify_break(const std::vector<LineSummary>& lines, size_t prev, size_t i) {
  const LineSummary& s = lines[i];
  const uint64_t expected = lines[prev].seq + 1;
  const bool link_ok = s.prev_hash == lines[prev].hash;
  if (s.seq != expected && link_ok) {
    return {i, AuditDefect::kEdited, "its seq was changed (" + std::to_string(s.seq) + ")"};
  }
  if (s.seq == expected) {
    // Either the previous record changed, or this one's prev_hash did: the next record tells.
    const bool this_one_intact =
        i + 1 >= lines.size() || (lines[i + 1].valid && lines[i + 1].prev_hash == s.hash);
    if (this_one_intact) {
      return {prev, AuditDefect::kEdited, "its hash does not match the next record's prev_hash"};
    }
    return {i, AuditDefect::kEdited, "its prev_hash was changed"};
  }
  for (size_t j = i + 1; j < lines.size(); ++j) {
    if (lines[j].valid && lines[j].seq == expected) {
      return {i, AuditDefect::kReordered,
              "seq " + std::to_string(s.seq) + " where " + std::to_string(expected) +
                  " belongs (found later)"};
    }
  }
  if (s.seq > expected) {
    return {i, AuditDefect::kDeleted,
            "records seq " + std::to_string(expected) + ".." + std::to_string(s.seq - 1) +
                " are missing before it"};
  }
  return {i, AuditDefect::kReordered,
          "seq " + std::to_string(s.seq) + " comes after seq " + std::to_string(lines[prev].seq)};
}

std::optional<Finding> check_chain(const std::vector<LineSummary>& lines,
                                   AuditVerifyReport& report) {
  std::optional<size_t> prev;
  for (size_t i = 0; i < lines.size(); ++i) {
    const LineSummary& s = lines[i];
    if (!s.terminated) {
      return Finding{i, AuditDefect::kTruncated, "the record has no line end (cut mid-write)"};
    }
    if (!s.valid) {
      const bool recovered = i + 1 < lines.size() && lines[i + 1].action == kActionRecovered;
      if (recovered) {
        return Finding{i, AuditDefect::kTruncated,
                       "a record cut by a crash mid-write (the log ended it on restart)"};
      }
      return Finding{i, AuditDefect::kEdited, "not a valid audit record"};
    }
    if (!prev) {
      if (auto finding = check_first(s, report)) return finding;
    } else if (s.seq != lines[*prev].seq + 1 || s.prev_hash != lines[*prev].hash) {
      return classify_break(lines, *prev, i);
    }
    prev = i;
  }
  return std::nullopt;
}

}  // namespace

std::string_view audit_defect_name(AuditDefect defect) {
  switch (defect) {
    case AuditDefect::kNone:
      return "none";
    case AuditDefect::kEdited:
      return "edited";
    case AuditDefect::kDeleted:
      return "deleted";
    case AuditDefect::kReordered:
      return "reordered";
    case AuditDefect::kTruncated:
      return "truncated";
  }
  return "unknown";
}

AuditVerifyReport verify_audit_files(const std::vector<std::string>& files) {
  const std::vector<LineSummary> lines = read_lines(files);
  AuditVerifyReport report;
  report.records = lines.size();
  for (const LineSummary& s : lines) {
    if (!s.valid) continue;
    if (report.first_timestamp.empty()) report.first_timestamp = s.timestamp;
    report.last_timestamp = s.timestamp;
  }
  if (!lines.empty()) report.last_hash = lines.back().hash;
  if (auto finding = check_chain(lines, report)) {
    const LineSummary& bad = lines[finding->index];
    report.defect = finding->defect;
    report.bad_file = files[bad.file];
    report.bad_line = bad.line;
    report.reason = std::move(finding->reason);
    return report;
  }
  if (lines.empty()) report.notes.push_back("no records");
  report.intact = true;
  return report;
}

}  // namespace autoglm::security
