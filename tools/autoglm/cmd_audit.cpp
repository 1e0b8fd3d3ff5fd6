// `autoglm audit`: tools for the tamper-evident audit log (security/audit_log.h).
//   audit verify FILE|DIR|PREFIX...  recompute the hash chain (files oldest first); exit 0 only
//                                    when intact, else name the first bad record and why.
//   audit bench FILE                 append N records and report records/s (the cost of the
//                                    fsync policy; a benchmark, not a test).
// Thread ownership: main thread.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "security/audit_file.h"
#include "security/audit_log.h"
#include "security/audit_verify.h"

namespace autoglm::cli {
namespace {

struct BenchArgs {
  std::string path;
  int records = 2000;
  std::string fsync = "every_record";
  int threads = 1;
};

int run_verify(const std::vector<std::string>& arguments) {
  const std::vector<std::string> files = security::expand_audit_paths(arguments);
  const security::AuditVerifyReport report = security::verify_audit_files(files);
  for (const std::string& file : files) std::printf("file: %s\n", file.c_str());
  std::printf("records: %llu\nfirst: %s\nlast: %s\nfirst prev_hash: %s\nlast hash: %s\n",
              static_cast<unsigned long long>(report.records), report.first_timestamp.c_str(),
              report.last_timestamp.c_str(), report.first_prev_hash.c_str(),
              report.last_hash.c_str());
  for (const std::string& note : report.notes) std::printf("note: %s\n", note.c_str());
  if (report.intact) {
    std::printf("chain: intact\n");
    return 0;
  }
  std::printf("chain: BROKEN at %s:%llu: %s (%s)\n", report.bad_file.c_str(),
              static_cast<unsigned long long>(report.bad_line),
              std::string(security::audit_defect_name(report.defect)).c_str(),
              report.reason.c_str());
  return 1;
}

int run_bench(const BenchArgs& args) {
  std::filesystem::remove(args.path);
  security::AuditLogOptions options;
  options.path = args.path;
  options.fsync = security::parse_audit_fsync(args.fsync);
  options.max_bytes = 0;
  security::AuditEvent event;
  event.action = "inference";
  event.user_id = "bench-key";
  event.resource = "glm-4-9b";
  event.client_ip = "10.0.0.1";
  event.status = "ok";
  event.http_status = 200;
  event.prompt_tokens = 512;
  event.completion_tokens = 128;
  event.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::atomic<int> failed{0};
  const auto started = std::chrono::steady_clock::now();
  {
    security::AuditLog log(options);
    std::vector<std::thread> writers;
    for (int t = 0; t < args.threads; ++t) {
      writers.emplace_back([&] {
        for (int i = 0; i < args.records / args.threads; ++i) {
          if (!log.record(event)) ++failed;
        }
      });
    }
    for (auto& writer : writers) writer.join();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int written = args.records / args.threads * args.threads;
  std::printf(
      "{\"fsync\": \"%s\", \"threads\": %d, \"records\": %d, \"failed\": %d, "
      "\"seconds\": %.3f, \"records_per_s\": %.0f, \"us_per_record\": %.1f}\n",
      args.fsync.c_str(), args.threads, written, failed.load(), seconds, written / seconds,
      seconds * 1e6 / written);
  return failed == 0 ? 0 : 1;
}

}  // namespace

void register_audit(CLI::App& app, int* exit_code) {
  auto* audit = app.add_subcommand("audit", "Audit log tools (verify the hash chain)");
  audit->require_subcommand(1);

  auto* verify = audit->add_subcommand(
      "verify",
      "Recompute the audit log's hash chain over FILEs (oldest first; a directory or a rotated "
      "log's path gives path.N .. path.1, path). Exit 0 only when intact; otherwise print the "
      "first bad record's line and why (edited, deleted, reordered, truncated).");
  auto files = std::make_shared<std::vector<std::string>>();
  verify->add_option("files", *files, "Audit log files, directories or prefixes")->required();
  verify->callback([files, exit_code] { *exit_code = run_verify(*files); });

  auto* bench = audit->add_subcommand("bench", "Append records to FILE (replaced) and time it");
  auto bench_args = std::make_shared<BenchArgs>();
  bench->add_option("file", bench_args->path, "Scratch file (deleted first)")->required();
  bench->add_option("--records", bench_args->records, "Records to write")
      ->check(CLI::PositiveNumber);
  bench->add_option("--fsync", bench_args->fsync, "every_record or interval");
  bench->add_option("--threads", bench_args->threads, "Writer threads")->check(CLI::Range(1, 64));
  bench->callback([bench_args, exit_code] { *exit_code = run_bench(*bench_args); });
}

}  // namespace autoglm::cli
