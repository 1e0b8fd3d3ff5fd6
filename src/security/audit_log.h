// The tamper-evident audit log: an AuditSink that appends one JSON line per event to a file,
// each line carrying the SHA-256 of the previous line (a hash chain that `autoglm audit verify`
// recomputes), with size-based rotation that keeps the chain across files.
//
// Record fields, in this order and no others: timestamp (RFC 3339 UTC, milliseconds), seq
// (1, 2, ... along the whole chain, across rotations), user_id, action, resource, client_ip,
// status, http_status (null when 0), prompt_tokens, completion_tokens (null when -1),
// trace_id, detail, prev_hash (lower-case hex SHA-256 of the previous record's line bytes,
// without its '\n'; 64 zeros for the first record of a chain).
//
// Durability: each record is one write(2) on an O_APPEND descriptor (in the kernel at once, so
// it survives a crash of the process), then fsync'ed: every record, or from a flusher thread
// every `fsync_interval` (admin records always at once: they are written before the action). A
// crash mid-write can leave at most the last line partial; on start the log terminates such a line,
// continues the chain from the last whole record and writes an "audit_recovered" record, and verify
// reports the partial line as "truncated". A failed or short write is undone with ftruncate when
// the file allows it.
//
// Thread ownership: record() is safe from any thread (one mutex serializes writes); the flusher
// thread (interval policy only) is owned by the AuditLog and joined by its destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "security/audit_sink.h"
#include "security/digest.h"

namespace autoglm::security {

enum class AuditFsync { kEveryRecord, kInterval };

// "every_record" | "interval"; throws Error(kInvalidArgument) otherwise.
AuditFsync parse_audit_fsync(std::string_view text);
std::string_view audit_fsync_name(AuditFsync policy);

struct AuditLogOptions {
  std::string path;                  // the live file; rotated files are path.1 (newest) .. path.N
  uint64_t max_bytes = 64ull << 20;  // rotate before a record would grow the file past this;
                                     // 0: never rotate
  int max_files = 10;                // rotated files kept (path.1 .. path.max_files)
  // interval by default: an fsync per record costs ~2.8 ms on the development VM (354
  // records/s, serialized) against ~40 us without (26,000/s); see docs/SECURITY.md.
  AuditFsync fsync = AuditFsync::kInterval;
  std::chrono::milliseconds fsync_interval{1000};  // kInterval only
};

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The actions the log writes itself.
inline constexpr std::string_view kActionRotated = "audit_rotated";
inline constexpr std::string_view kActionAdmin = "admin";
inline constexpr std::string_view kActionRecovered = "audit_recovered";

// "2026-11-22T04:27:07.123Z".
std::string rfc3339_utc_ms(std::chrono::system_clock::time_point when);
// One record's line, without the trailing '\n'.
std::string format_audit_record(const AuditEvent& event, uint64_t seq, std::string_view timestamp,
                                std::string_view prev_hash);

class AuditLog : public AuditSink {
 public:
  // Opens (creating, mode 0600) the file and continues the chain found at its tail. Throws
  // Error when the file cannot be opened or its last whole record is not an audit record.
  explicit AuditLog(AuditLogOptions options);
  ~AuditLog() override;  // stops the flusher, fsyncs, closes
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  bool record(const AuditEvent& event) noexcept override;
  bool healthy() const noexcept override;

  uint64_t last_seq() const;      // 0 before any record
  std::string last_hash() const;  // kGenesisHash before any record

 private:
  void open_and_continue_chain();
  bool append_locked(const AuditEvent& event);
  bool write_line_locked(const std::string& line);
  bool rotate_locked();
  bool sync_locked();
  void flusher_loop();
  AuditEvent own_event(std::string_view action, std::string status, std::string detail) const;
  std::string rotated_name(int index) const;

  const AuditLogOptions options_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  uint64_t file_bytes_ = 0;  // bytes in the live file (we are its only writer)
  uint64_t seq_ = 0;
  std::string last_hash_{kGenesisHash};
  bool healthy_ = true;    // the last write (and sync) succeeded
  bool unsynced_ = false;  // interval policy: records written since the last fsync
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread flusher_;
};

}  // namespace autoglm::security
