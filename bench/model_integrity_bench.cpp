// Model integrity benchmark (issue 8): what verifying a signed model costs at load time.
// For a signed model directory it measures, each from a cold page cache for the model's files
// (POSIX_FADV_DONTNEED on every file, other processes' caches untouched) unless --warm:
//   hash      hashing every file (1 thread and the pool), GB/s
//   load      Engine construction + a 1-token generation (touches every weight): no check
//   serial    verify_model_directory, then the load
//   overlap   the serve path: the manifest checked, hashing started, the Engine built while
//             it runs, the result awaited, then the 1-token generation
// Results and the exact commands go in docs/PERFORMANCE.md ("Model integrity").
// Thread ownership: the benchmark thread; hashing and the engine run their own threads.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <thread>

#include "autoglm/engine.h"
#include "bench_util.h"
#include "security/signing_gate.h"

namespace {

using autoglm::bench::Clock;
using autoglm::bench::seconds_between;
namespace sec = autoglm::security;

struct Options {
  std::string model;
  std::string trusted_key;
  int repeats = 3;
  bool warm = false;
};

void evict_from_page_cache(const std::string& directory) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
    if (!entry.is_regular_file()) continue;
    int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

std::unique_ptr<autoglm::Engine> build_engine(const Options& o) {
  autoglm::EngineOptions options;
  options.model_path = o.model;
  options.device = "cpu";
  options.kv_cache_bytes = 64ull << 20;
  return std::make_unique<autoglm::Engine>(options);
}

// One greedy token: the first forward pass reads every weight.
void generate_one(autoglm::Engine& engine) {
  autoglm::GenerationRequest request;
  request.prompt_ids = {1};
  request.stop.max_tokens = 1;
  request.stop.ignore_eos = true;
  engine.generate(std::move(request));
}

void require(const sec::VerificationReport& report) {
  if (!report.ok()) {
    std::fprintf(stderr, "verification failed: %s\n", report.summary().c_str());
    std::exit(1);
  }
}

// Median wall seconds of `repeats` runs of `body`, each after evicting the model (unless warm).
double median_seconds(const Options& o, const std::function<void()>& body) {
  std::vector<double> samples;
  for (int i = 0; i < o.repeats; ++i) {
    if (!o.warm) evict_from_page_cache(o.model);
    auto start = Clock::now();
    body();
    samples.push_back(seconds_between(start, Clock::now()));
  }
  return autoglm::bench::summarize(samples).p50;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Model integrity benchmark: hashing and load time with and without verification"};
  Options o;
  app.add_option("--model", o.model, "Signed model directory")->required();
  app.add_option("--trusted-key", o.trusted_key, "Public key that signed it")->required();
  app.add_option("--repeats", o.repeats, "Runs per measurement (the median is reported)");
  app.add_flag("--warm", o.warm, "Keep the page cache (default: evict the model before each run)");
  CLI11_PARSE(app, argc, argv);
  std::vector<sec::Ed25519PublicKey> keys = {sec::Ed25519PublicKey::load_pem_file(o.trusted_key)};
  sec::VerificationReport probe = sec::verify_model_directory(o.model, keys);
  require(probe);
  double gb = static_cast<double>(probe.bytes_hashed) / 1e9;
  unsigned cores = std::thread::hardware_concurrency();
  std::printf("model %s: %zu files, %.2f GB, %u cores, %s page cache, median of %d\n",
              o.model.c_str(), probe.manifest.files.size(), gb, cores, o.warm ? "warm" : "cold",
              o.repeats);

  for (int threads : {1, 0}) {
    sec::VerifyOptions verify_options;
    verify_options.hash.threads = threads;
    // CPU seconds of the whole process (every thread): separates the cost of SHA-256 from the
    // waiting for the disk or for a share of a busy machine.
    std::clock_t cpu_start = std::clock();
    double s = median_seconds(
        o, [&] { require(sec::verify_model_directory(o.model, keys, verify_options)); });
    double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC / o.repeats;
    std::printf("hash %-8s %7.3f s  %6.2f GB/s wall, %6.3f CPU s (%.2f GB per CPU s)\n",
                threads == 1 ? "1 thread" : "pool", s, gb / s, cpu, gb / cpu);
  }
  double load = median_seconds(o, [&] { generate_one(*build_engine(o)); });
  double serial = median_seconds(o, [&] {
    require(sec::verify_model_directory(o.model, keys));
    generate_one(*build_engine(o));
  });
  double overlap = median_seconds(o, [&] {
    auto verification = sec::start_model_verification(o.model, keys);
    std::unique_ptr<autoglm::Engine> engine = build_engine(o);
    require(verification.get());
    generate_one(*engine);
  });
  std::printf("load (no check)   %7.3f s\n", load);
  std::printf("verify, then load %7.3f s  (x%.2f)\n", serial, serial / load);
  std::printf("verify || load    %7.3f s  (x%.2f)  <- autoglm serve --require-signed-models\n",
              overlap, overlap / load);
  return 0;
}
