// Unit tests of the tamper-evident audit log (security/audit_log.h) and its verifier
// (security/audit_verify.h): the chain, each kind of tampering named at the right line,
// rotation across files, restart after a crash mid-write, and a full disk (/dev/full).
// Thread ownership: the test thread (plus the writers of the concurrency test).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "security/audit_file.h"
#include "security/audit_log.h"
#include "security/audit_policy.h"
#include "security/audit_verify.h"

namespace autoglm::security {
namespace {

namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("autoglm_audit_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "audit.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static AuditEvent event(int i) {
    AuditEvent e;
    e.action = "inference";
    e.user_id = "key-" + std::to_string(i);
    e.resource = "tiny";
    e.client_ip = "127.0.0.1";
    e.status = "ok";
    e.http_status = 200;
    e.prompt_tokens = 10 + i;
    e.completion_tokens = 5;
    e.trace_id = "trace" + std::to_string(i);
    return e;
  }

  void write_records(int count, AuditLogOptions options = {}) {
    if (options.path.empty()) options.path = path_;
    AuditLog log(options);
    for (int i = 0; i < count; ++i) ASSERT_TRUE(log.record(event(i)));
  }

  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> result;
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
  void rewrite(const std::vector<std::string>& new_lines, bool final_newline = true) const {
    std::ofstream out(path_, std::ios::trunc | std::ios::binary);
    for (size_t i = 0; i < new_lines.size(); ++i) {
      out << new_lines[i];
      if (i + 1 < new_lines.size() || final_newline) out << '\n';
    }
  }
  AuditVerifyReport verify() const { return verify_audit_files({path_}); }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, RecordsCarryExactlyTheAuditFieldsAndChain) {
  write_records(3);
  const auto all = lines();
  ASSERT_EQ(all.size(), 3u);
  const auto first = nlohmann::ordered_json::parse(all[0]);
  std::vector<std::string> keys;
  for (const auto& [key, value] : first.items()) keys.push_back(key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"timestamp", "seq", "user_id", "action", "resource",
                                      "client_ip", "status", "http_status", "prompt_tokens",
                                      "completion_tokens", "trace_id", "detail", "prev_hash"}));
  EXPECT_EQ(first["prev_hash"], std::string(kGenesisHash));
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prompt_tokens"], 10);
  EXPECT_EQ(first["timestamp"].get<std::string>().size(), 24u);  // 2026-11-22T04:27:07.123Z
  const auto second = nlohmann::ordered_json::parse(all[1]);
  EXPECT_EQ(second["prev_hash"], sha256_hex(all[0]));
  const AuditVerifyReport report = verify();
  EXPECT_TRUE(report.intact) << report.reason;
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(report.first_timestamp, first["timestamp"]);
  EXPECT_EQ(report.last_hash, sha256_hex(all[2]));
}

TEST_F(AuditLogTest, NotApplicableCountsAreNull) {
  AuditEvent e;
  e.action = "model_load";
  const auto record = nlohmann::json::parse(format_audit_record(e, 1, "t", kGenesisHash));
  EXPECT_TRUE(record["http_status"].is_null());
  EXPECT_TRUE(record["prompt_tokens"].is_null());
  EXPECT_EQ(record["user_id"], "anonymous");
}

TEST_F(AuditLogTest, ReopeningContinuesTheChain) {
  write_records(2);
  write_records(2);
  const auto all = lines();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(all[2])["seq"], 3);
  EXPECT_TRUE(verify().intact);
}

TEST_F(AuditLogTest, OneEditedByteIsDetectedAtThatLine) {
  write_records(5);
  auto all = lines();
  const size_t at = all[2].find("key-2");
  ASSERT_NE(at, std::string::npos);
  all[2][at + 4] = '7';  // key-2 -> key-7: still valid JSON
  rewrite(all);
  const AuditVerifyReport report = verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.defect, AuditDefect::kEdited);
  EXPECT_EQ(report.bad_line, 3u);
}

TEST_F(AuditLogTest, AnEditedPrevHashIsBlamedOnItsOwnLine) {
  write_records(4);
  auto all = lines();
  const size_t at = all[1].find("\"prev_hash\":\"") + 13;
  all[1][at] = all[1][at] == 'a' ? 'b' : 'a';
  rewrite(all);
  const AuditVerifyReport report = verify();
  EXPECT_EQ(report.defect, AuditDefect::kEdited);
  EXPECT_EQ(report.bad_line, 2u);
}

TEST_F(AuditLogTest, ADeletedLineIsDetected) {
  write_records(5);
  auto all = lines();
  all.erase(all.begin() + 2);
  rewrite(all);
  const AuditVerifyReport report = verify();
  EXPECT_EQ(report.defect, AuditDefect::kDeleted);
  EXPECT_EQ(report.bad_line, 3u);
}

TEST_F(AuditLogTest, DeletingTheFirstLineIsDetected) {
  write_records(3);
  auto all = lines();
  all.erase(all.begin());
  rewrite(all);
  EXPECT_EQ(verify().defect, AuditDefect::kDeleted);
}

TEST_F(AuditLogTest, SwappedLinesAreReportedAsReordered) {
  write_records(5);
  auto all = lines();
  std::swap(all[1], all[2]);
  rewrite(all);
  const AuditVerifyReport report = verify();
  EXPECT_EQ(report.defect, AuditDefect::kReordered);
  EXPECT_EQ(report.bad_line, 2u);
}

TEST_F(AuditLogTest, ALineCutMidWayIsTruncated) {
  write_records(3);
  auto all = lines();
  all[2].resize(all[2].size() / 2);
  rewrite(all, /*final_newline=*/false);
  const AuditVerifyReport report = verify();
  EXPECT_EQ(report.defect, AuditDefect::kTruncated);
  EXPECT_EQ(report.bad_line, 3u);
}

TEST_F(AuditLogTest, RestartAfterACrashMidWriteEndsThePartialLineAndContinues) {
  write_records(3);
  auto all = lines();
  all[2].resize(all[2].size() / 2);  // what a crash during the third write(2) can leave
  rewrite(all, /*final_newline=*/false);
  {
    AuditLog log({path_});
    EXPECT_EQ(log.last_seq(), 3u);  // seq 2 plus the "audit_recovered" record
    EXPECT_TRUE(log.record(event(9)));
  }
  const auto after = lines();
  ASSERT_EQ(after.size(), 5u);
  EXPECT_EQ(nlohmann::json::parse(after[3])["action"], std::string(kActionRecovered));
  EXPECT_EQ(nlohmann::json::parse(after[3])["prev_hash"], sha256_hex(after[1]));
  const AuditVerifyReport report = verify();
  EXPECT_EQ(report.defect, AuditDefect::kTruncated);
  EXPECT_EQ(report.bad_line, 3u);
}

TEST_F(AuditLogTest, RefusesToAppendToAFileThatIsNotAnAuditLog) {
  std::ofstream(path_) << "hello\n";
  EXPECT_THROW(AuditLog({path_}), Error);
}

TEST_F(AuditLogTest, RotationKeepsTheChainAcrossFiles) {
  AuditLogOptions options;
  options.path = path_;
  options.max_bytes = 1200;  // a few records per file
  options.max_files = 50;
  write_records(20, options);
  const std::vector<std::string> files = expand_audit_paths({dir_.string()});
  ASSERT_GT(files.size(), 3u);
  EXPECT_EQ(files.back(), path_);
  EXPECT_EQ(files.front(), path_ + "." + std::to_string(files.size() - 1));
  for (const std::string& file : files) EXPECT_LE(fs::file_size(file), 1200u);
  const AuditVerifyReport report = verify_audit_files(files);
  EXPECT_TRUE(report.intact) << report.reason;
  // The newest file starts with a rotation record chained to the previous file's last line.
  const auto first = nlohmann::json::parse(lines().front());
  EXPECT_EQ(first["action"], std::string(kActionRotated));
  // Verifying the live file alone starts mid-chain at a rotation record: intact, with a note.
  const AuditVerifyReport alone = verify();
  EXPECT_TRUE(alone.intact);
  EXPECT_FALSE(alone.notes.empty());
  // Removing a middle file breaks the set.
  std::vector<std::string> gap = files;
  gap.erase(gap.begin() + 1);
  EXPECT_EQ(verify_audit_files(gap).defect, AuditDefect::kDeleted);
}

TEST_F(AuditLogTest, RotationDropsTheOldestBeyondMaxFiles) {
  AuditLogOptions options;
  options.path = path_;
  options.max_bytes = 800;
  options.max_files = 2;
  write_records(30, options);
  EXPECT_TRUE(fs::exists(path_ + ".2"));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  const AuditVerifyReport report =
      verify_audit_files(expand_audit_paths({path_ + ".2", path_ + ".1", path_}));
  EXPECT_TRUE(report.intact) << report.reason;
}

TEST_F(AuditLogTest, ConcurrentWritersKeepOneChain) {
  {
    AuditLog log({path_});
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&log, t] {
        for (int i = 0; i < 50; ++i) EXPECT_TRUE(log.record(event(t * 100 + i)));
      });
    }
    for (auto& writer : writers) writer.join();
  }
  const AuditVerifyReport report = verify();
  EXPECT_TRUE(report.intact) << report.reason;
  EXPECT_EQ(report.records, 200u);
}

TEST_F(AuditLogTest, IntervalFsyncWritesTheSameChain) {
  AuditLogOptions options;
  options.path = path_;
  options.fsync = AuditFsync::kInterval;
  options.fsync_interval = std::chrono::milliseconds(5);
  write_records(10, options);
  EXPECT_TRUE(verify().intact);
}

TEST(AuditLogDiskFull, RecordReturnsFalseAndAdminActionsFailClosed) {
  AuditLog log({"/dev/full"});
  AuditEvent e;
  e.action = "admin";
  EXPECT_FALSE(log.record(e));
  EXPECT_FALSE(log.healthy());
  EXPECT_EQ(log.last_seq(), 0u);  // nothing was chained past the failed record
  EXPECT_FALSE(audit_admin_action(&log, e));
  EXPECT_TRUE(audit_admin_action(nullptr, e));  // auditing off: the action runs
}

TEST(AuditLogSettings, PoliciesParseAndRejectUnknownNames) {
  EXPECT_EQ(parse_audit_fsync("every_record"), AuditFsync::kEveryRecord);
  EXPECT_EQ(parse_audit_fsync("interval"), AuditFsync::kInterval);
  EXPECT_THROW(parse_audit_fsync("sometimes"), Error);
  EXPECT_EQ(parse_audit_failure_policy("closed"), AuditFailurePolicy::kClosed);
  EXPECT_THROW(parse_audit_failure_policy("ajar"), Error);
}

}  // namespace
}  // namespace autoglm::security
