// See audit_log.h. The chain state (seq, last hash, file size) lives under one mutex; every
// write, rotation and fsync happens under it. Thread ownership: any thread; the flusher thread.
#include "security/audit_log.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "security/audit_file.h"

namespace autoglm::security {
namespace {

// Long fields are cut so that one record stays one small write (and the tail fits one read).
constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxDetailBytes = 512;

std::string capped(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...";
}

nlohmann::ordered_json count_or_null(int64_t value) {
  if (value < 0) return nullptr;
  return value;
}

std::string errno_text() {
  return std::strerror(errno);
}

std::string rotated_path(const std::string& path, int index) {
  return path + "." + std::to_string(index);
}

}  // namespace

// A record the log writes about itself; the resource is the file's name, never its directory.
AuditEvent AuditLog::own_event(std::string_view action, std::string status,
                               std::string detail) const {
  AuditEvent event;
  event.action = std::string(action);
  event.user_id = "autoglm";
  event.resource = std::filesystem::path(options_.path).filename().string();
  event.status = std::move(status);
  event.detail = std::move(detail);
  return event;
}

std::string AuditLog::rotated_name(int index) const {
  return std::filesystem::path(rotated_path(options_.path, index)).filename().string();
}

AuditFsync parse_audit_fsync(std::string_view text) {
  if (text == "every_record") return AuditFsync::kEveryRecord;
  if (text == "interval") return AuditFsync::kInterval;
  fail(ErrorCode::kInvalidArgument,
       "audit_fsync must be every_record or interval, not '" + std::string(text) + "'");
}

std::string_view audit_fsync_name(AuditFsync policy) {
  return policy == AuditFsync::kEveryRecord ? "every_record" : "interval";
}

std::string rfc3339_utc_ms(std::chrono::system_clock::time_point when) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[96];  // generous: the compiler cannot bound tm's fields
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return text;
}

std::string format_audit_record(const AuditEvent& event, uint64_t seq, std::string_view timestamp,
                                std::string_view prev_hash) {
  nlohmann::ordered_json record;
  record["timestamp"] = timestamp;
  record["seq"] = seq;
  record["user_id"] = capped(event.user_id.empty() ? "anonymous" : event.user_id, kMaxFieldBytes);
  record["action"] = capped(event.action, kMaxFieldBytes);
  record["resource"] = capped(event.resource, kMaxFieldBytes);
  record["client_ip"] = capped(event.client_ip, kMaxFieldBytes);
  record["status"] = capped(event.status, kMaxFieldBytes);
  record["http_status"] = count_or_null(event.http_status == 0 ? -1 : event.http_status);
  record["prompt_tokens"] = count_or_null(event.prompt_tokens);
  record["completion_tokens"] = count_or_null(event.completion_tokens);
  record["trace_id"] = capped(event.trace_id, kMaxFieldBytes);
  record["detail"] = capped(event.detail, kMaxDetailBytes);
  record["prev_hash"] = prev_hash;
  // Invalid UTF-8 in a field becomes U+FFFD rather than an exception: a record is never lost
  // to a malformed header value.
  return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

AuditLog::AuditLog(AuditLogOptions options) : options_(std::move(options)) {
  if (options_.path.empty()) fail(ErrorCode::kInvalidArgument, "audit log path is empty");
  if (options_.max_files < 1) fail(ErrorCode::kInvalidArgument, "audit_max_files must be >= 1");
  open_and_continue_chain();
  if (options_.fsync == AuditFsync::kInterval) flusher_ = std::thread([this] { flusher_loop(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) {
    if (unsynced_) ::fsync(fd_);
    ::close(fd_);
  }
}

void AuditLog::open_and_continue_chain() {
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    fail(ErrorCode::kInvalidArgument,
         "cannot open audit log " + options_.path + ": " + errno_text());
  }
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) return;  // a device: nothing to read
  file_bytes_ = static_cast<uint64_t>(info.st_size);
  AuditTail tail = read_audit_tail(options_.path);
  bool continues_older_file = false;
  if (!tail.found && file_bytes_ == 0 && std::filesystem::exists(rotated_path(options_.path, 1))) {
    // A crash between the rename and the rotation record: continue from the newest old file.
    tail = read_audit_tail(rotated_path(options_.path, 1));
    continues_older_file = tail.found;
  }
  if (tail.found) {
    seq_ = tail.seq;
    last_hash_ = tail.hash;
  }
  if (tail.partial_bytes > 0 && !continues_older_file) {
    // End the partial line so that the next record starts a line of its own.
    if (!write_line_locked("")) {
      fail(ErrorCode::kInvalidArgument, "cannot repair audit log " + options_.path);
    }
    append_locked(
        own_event(kActionRecovered, "error", "a partial record (crash mid-write) was ended"));
  } else if (continues_older_file) {
    append_locked(own_event(kActionRotated, "ok", "chain continues from " + rotated_name(1)));
  }
}

bool AuditLog::record(const AuditEvent& event) noexcept {
  try {
    std::lock_guard lock(mutex_);
    const bool ok = append_locked(event);
    healthy_ = ok;
    return ok;
  } catch (...) {  // allocation failure or the like: the record is lost, say so
    return false;
  }
}

bool AuditLog::healthy() const noexcept {
  std::lock_guard lock(mutex_);
  return healthy_;
}

uint64_t AuditLog::last_seq() const {
  std::lock_guard lock(mutex_);
  return seq_;
}

std::string AuditLog::last_hash() const {
  std::lock_guard lock(mutex_);
  return last_hash_;
}

bool AuditLog::append_locked(const AuditEvent& event) {
  if (fd_ < 0) {  // a rotation could not reopen the file: try again on each record
    fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return false;
    struct stat info {};
    file_bytes_ = ::fstat(fd_, &info) == 0 ? static_cast<uint64_t>(info.st_size) : 0;
  }
  std::string line = format_audit_record(
      event, seq_ + 1, rfc3339_utc_ms(std::chrono::system_clock::now()), last_hash_);
  if (options_.max_bytes > 0 && file_bytes_ > 0 &&
      file_bytes_ + line.size() + 1 > options_.max_bytes && event.action != kActionRotated) {
    if (!rotate_locked()) return false;
    // The rotation record advanced the chain: rebuild this record on top of it.
    line = format_audit_record(event, seq_ + 1, rfc3339_utc_ms(std::chrono::system_clock::now()),
                               last_hash_);
  }
  if (!write_line_locked(line)) return false;
  ++seq_;
  last_hash_ = sha256_hex(line);
  // Admin actions are rare and fail closed: they are on the disk before the action runs.
  if (options_.fsync == AuditFsync::kEveryRecord || event.action == kActionAdmin) {
    return sync_locked();
  }
  unsynced_ = true;
  return true;
}

// One write(2) of the line and its '\n'. A short or failed write is cut back off the file so
// that the next record does not land in the middle of a partial line.
bool AuditLog::write_line_locked(const std::string& line) {
  std::string bytes = line + "\n";
  ssize_t written = -1;
  do {
    written = ::write(fd_, bytes.data(), bytes.size());
  } while (written < 0 && errno == EINTR);
  if (written == static_cast<ssize_t>(bytes.size())) {
    file_bytes_ += bytes.size();
    return true;
  }
  if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
    file_bytes_ += static_cast<uint64_t>(written);  // the partial line stays: verify reports it
  }
  return false;
}

bool AuditLog::sync_locked() {
  if (::fdatasync(fd_) == 0) {
    unsynced_ = false;
    return true;
  }
  // A character device (tests use /dev/null) cannot sync and needs not.
  return errno == EINVAL || errno == EROFS;
}

// path.(N-1) -> path.N, ..., path -> path.1, a fresh path, and an "audit_rotated" record first
// in it whose prev_hash is the old file's last hash.
bool AuditLog::rotate_locked() {
  if (::fsync(fd_) != 0 && errno != EINVAL) return false;
  ::close(fd_);
  fd_ = -1;
  std::error_code ignored;
  for (int index = options_.max_files - 1; index >= 1; --index) {
    std::filesystem::rename(rotated_path(options_.path, index),
                            rotated_path(options_.path, index + 1), ignored);
  }
  std::filesystem::rename(options_.path, rotated_path(options_.path, 1), ignored);
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return false;
  file_bytes_ = 0;
  // The renames reach the disk before the new file's first record does.
  const std::string dir = std::filesystem::path(options_.path).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return append_locked(own_event(kActionRotated, "ok", "chain continues from " + rotated_name(1)));
}

void AuditLog::flusher_loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, options_.fsync_interval);
    if (unsynced_ && fd_ >= 0 && !sync_locked()) healthy_ = false;
  }
}

}  // namespace autoglm::security
