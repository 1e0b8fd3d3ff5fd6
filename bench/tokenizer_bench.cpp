// Tokenizer encode throughput benchmark: encodes every line of the given corpus files one at
// a time (single thread), repeating until at least --seconds have passed, after one warm-up
// pass (so the BPE word cache is warm, as it is for HF's). Prints MB/s and tokens/s.
// Usage: tokenizer_bench TOKENIZER_JSON CORPUS.txt... [--seconds S] [--whole]
//   --whole: also time the whole corpus encoded as one string.
// Compare with bench/tokenizer_bench_hf.py. Thread ownership: main thread only.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> read_lines(const std::vector<std::string>& files, std::string* whole) {
  std::vector<std::string> lines;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    *whole += text;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      lines.push_back(text.substr(start, end - start));
      start = end + 1;
    }
  }
  return lines;
}

void report(const char* what, double seconds, size_t bytes, size_t tokens) {
  std::printf("%-8s %8.2f MB/s  %10.0f tokens/s  (%zu bytes, %zu tokens per pass, %.2f s)\n", what,
              bytes / seconds / 1e6, tokens / seconds, bytes, tokens, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  double min_seconds = 3.0;
  bool whole_mode = false;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      min_seconds = std::atof(argv[++i]);
    else if (std::strcmp(argv[i], "--whole") == 0)
      whole_mode = true;
    else
      files.push_back(argv[i]);
  }
  if (argc < 3 || files.empty()) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON CORPUS.txt... [--seconds S] [--whole]\n",
                 argv[0]);
    return 2;
  }
  try {
    const auto t0 = Clock::now();
    const autoglm::Tokenizer tok = autoglm::Tokenizer::load(argv[1]);
    std::printf("load     %.3f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    std::string whole;
    const auto lines = read_lines(files, &whole);
    // Special tokens recognised, as HF encodes by default.
    const autoglm::EncodeOptions opts{autoglm::SpecialTokenPolicy::kAll, {}, false};
    size_t bytes = 0, tokens = 0;
    for (const auto& l : lines) {  // warm-up pass
      bytes += l.size();
      tokens += tok.encode(l, opts).size();
    }
    size_t passes = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    while (elapsed < min_seconds) {
      for (const auto& l : lines) tok.encode(l, opts);
      ++passes;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    }
    report("lines", elapsed / passes, bytes, tokens);
    if (whole_mode) {
      const size_t whole_tokens = tok.encode(whole, opts).size();
      passes = 0;
      const auto s2 = Clock::now();
      elapsed = 0;
      while (elapsed < min_seconds) {
        tok.encode(whole, opts);
        ++passes;
        elapsed = std::chrono::duration<double>(Clock::now() - s2).count();
      }
      report("whole", elapsed / passes, whole.size(), whole_tokens);
    }
  } catch (const autoglm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
