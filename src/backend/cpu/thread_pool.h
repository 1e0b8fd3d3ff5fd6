// A small persistent thread pool for the CPU backend: N-1 worker threads plus the calling
// thread run one function per parallel region (GEMV/GEMM row blocks, attention heads).
// Thread ownership: owned by one CpuBackend and driven only by the engine thread that calls
// forward(); workers run only inside run(). Between regions they spin briefly (regions within
// one forward follow each other within microseconds) and then sleep on a futex (atomic::wait),
// so an idle engine costs no CPU.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace autoglm::cpu {

class ThreadPool {
 public:
  // `threads` <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(thread_index) once on every thread (the caller is index 0) and returns when all
  // calls have finished. fn must not throw. No allocation: fn is passed by reference.
  template <class Fn>
  void run(Fn& fn) {
    run_erased([](void* ctx, int index) { (*static_cast<Fn*>(ctx))(index); }, &fn);
  }

  // Splits [0, n) into size() contiguous ranges whose boundaries are multiples of `grain`
  // and calls fn(begin, end, thread_index) for each non-empty one.
  template <class Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    const int64_t units = (n + grain - 1) / grain;
    const int64_t threads = size();
    auto body = [&](int index) {
      const int64_t begin = std::min(n, units * index / threads * grain);
      const int64_t end = std::min(n, units * (index + 1) / threads * grain);
      if (begin < end) fn(begin, end, index);
    };
    if (threads == 1 || units <= 1) {
      if (n > 0) fn(int64_t{0}, n, 0);
      return;
    }
    run(body);
  }

 private:
  using Erased = void (*)(void*, int);
  void run_erased(Erased call, void* ctx);
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::atomic<uint32_t> generation_{0};  // 32-bit: futex-sized, so wait() is a plain futex
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  Erased call_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace autoglm::cpu
