// Reading audit log files back: the chain state at a file's tail (to continue it on start) and
// the list of files that make one rotated chain, oldest first (for verify).
// Thread ownership: pure functions over files, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace autoglm::security {

struct AuditTail {
  bool found = false;          // a whole record was found
  uint64_t seq = 0;            // its seq
  std::string hash;            // SHA-256 hex of its line
  uint64_t partial_bytes = 0;  // bytes after the last '\n' (a record cut by a crash)
};

// The last whole record of `path`. Throws Error when the file cannot be read or its last whole
// line is not an audit record (so that the log never appends to some other file).
AuditTail read_audit_tail(const std::string& path);

// Each argument: a regular file is itself; a directory gives every chain in it; a path that
// does not exist but has rotated siblings (path.1, ...) gives that chain. A chain is
// base.N, ..., base.1, base (oldest first). Throws Error(kNotFound) for anything else.
std::vector<std::string> expand_audit_paths(const std::vector<std::string>& arguments);

}  // namespace autoglm::security
