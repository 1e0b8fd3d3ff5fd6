// Verifying an audit chain (what `autoglm audit verify` runs): recomputes every record's hash
// over one or more files, oldest first, and names the first bad record and why.
// Thread ownership: pure function over files, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::security {

enum class AuditDefect {
  kNone,
  kEdited,     // a record's bytes changed (its successor's prev_hash no longer matches)
  kDeleted,    // records are missing (seq jumps, and the chain link is broken)
  kReordered,  // records are out of order (seq goes back, or the missing seq comes later)
  kTruncated,  // a record was cut (no line end): a crash mid-write or a cut file
};
std::string_view audit_defect_name(AuditDefect defect);  // "edited", ...

struct AuditVerifyReport {
  bool intact = false;
  uint64_t records = 0;  // lines read, over all files
  std::string first_timestamp;
  std::string last_timestamp;
  std::string first_prev_hash;  // the anchor the first record chains to (zeros: a new chain)
  std::string last_hash;        // compare with an anchor kept elsewhere: verify cannot see an
                                // edit of the very last record, nor the loss of whole tail files
  AuditDefect defect = AuditDefect::kNone;
  std::string bad_file;  // where the first bad record is
  uint64_t bad_line = 0;
  std::string reason;              // one sentence
  std::vector<std::string> notes;  // facts that are not failures
};

// `files` oldest first. Throws Error when a file cannot be read.
AuditVerifyReport verify_audit_files(const std::vector<std::string>& files);

}  // namespace autoglm::security
