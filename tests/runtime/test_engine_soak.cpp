// Soak: 500 requests from 8 client threads against a small, preempting KV pool, with random
// cancellations (at a random point of the stream, or before reading anything) and random
// timeouts. Afterwards every block is back in the pool, every request got exactly one closing
// delta (none lost, none answered twice), and the engine thread still serves. Also run under
// ThreadSanitizer by `make tsan-test`.
// Thread ownership: the test thread and the client threads it starts.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "autoglm/engine.h"

namespace autoglm {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

struct Tally {
  std::atomic<int> stop{0}, length{0}, cancelled{0}, timeout{0}, error{0}, rejected{0};
  std::atomic<int> closing_deltas{0}, streams{0};
};

// Reads one stream to its end, checking it closes exactly once; may cancel it midway.
void drain(Engine& engine, RequestStream& stream, int cancel_after, Tally& tally) {
  int deltas = 0;
  int closings = 0;
  while (std::optional<StreamDelta> d = stream.next()) {
    if (++deltas == cancel_after) engine.cancel(stream.id());
    if (!d->finish) continue;
    ++closings;
    switch (*d->finish) {
      case FinishCause::kStop:
        ++tally.stop;
        break;
      case FinishCause::kLength:
        ++tally.length;
        break;
      case FinishCause::kCancelled:
        ++tally.cancelled;
        break;
      case FinishCause::kTimeout:
        ++tally.timeout;
        break;
      case FinishCause::kError:
        ++tally.error;
        break;
    }
  }
  EXPECT_EQ(closings, 1) << "request " << stream.id();
  tally.closing_deltas += closings;
  ++tally.streams;
}

void client(Engine& engine, unsigned seed, int requests, Tally& tally, std::vector<uint64_t>& ids) {
  std::mt19937 rng(seed);
  for (int i = 0; i < requests; ++i) {
    GenerationRequest r;
    const size_t len = 1 + rng() % 40;
    for (size_t t = 0; t < len; ++t) r.prompt_ids.push_back(static_cast<int32_t>(rng() % 1000));
    r.sampling.temperature = (rng() % 2) ? 0.0f : 0.8f;
    r.sampling.seed = rng();
    r.stop.max_tokens = 1 + static_cast<int32_t>(rng() % 24);
    r.priority = static_cast<int32_t>(rng() % 3);
    const unsigned fate = rng() % 10;
    if (fate == 0) r.timeout = std::chrono::milliseconds(rng() % 20);
    if (fate == 1) r.queue_timeout = std::chrono::milliseconds(rng() % 5);
    try {
      RequestStream stream = engine.submit(std::move(r));
      ids.push_back(stream.id());
      if (fate == 2) engine.cancel(stream.id());  // before reading anything
      const int cancel_after = fate == 3 ? 1 + static_cast<int>(rng() % 8) : -1;
      drain(engine, stream, cancel_after, tally);
    } catch (const RequestRejected&) {
      ++tally.rejected;
    }
  }
}

TEST(EngineSoak, FiveHundredRequestsWithCancellationsAndTimeouts) {
  EngineOptions o;
  o.model_path = kModelDir;
  o.num_kv_blocks = 40;  // 160 tokens: far fewer than the clients ask for at once
  o.kv_block_size = 4;
  o.max_num_seqs = 16;
  o.max_batched_tokens = 64;
  o.check_invariants = true;
  Engine engine(o);
  Tally tally;
  std::vector<std::vector<uint64_t>> ids(8);
  std::vector<std::thread> clients;
  for (unsigned c = 0; c < 8; ++c) {
    clients.emplace_back(
        [&, c] { client(engine, 1000 + c, 500 / 8 + (c < 500 % 8), tally, ids[c]); });
  }
  for (std::thread& t : clients) t.join();

  std::set<uint64_t> unique;
  for (const auto& list : ids) unique.insert(list.begin(), list.end());
  EXPECT_EQ(tally.streams.load() + tally.rejected.load(), 500);
  EXPECT_EQ(unique.size(), static_cast<size_t>(tally.streams.load()));
  EXPECT_EQ(tally.closing_deltas.load(), tally.streams.load());
  EXPECT_EQ(tally.error.load(), 0);
  EXPECT_GT(tally.cancelled.load(), 0);
  EXPECT_GT(tally.length.load() + tally.stop.load(), 0);

  // The engine thread is alive and serving; then every block is back in the pool.
  EXPECT_TRUE(engine.engine_thread_alive());
  GenerationRequest last;
  last.prompt_ids = {5, 6, 7};
  last.stop.max_tokens = 4;
  last.stop.ignore_eos = true;
  EXPECT_EQ(engine.generate(last).finish, FinishCause::kLength);
  std::shared_ptr<const EngineMetricsSnapshot> m = engine.metrics();
  while (m->requests_running + m->requests_waiting > 0 ||
         m->requests_finished < static_cast<uint64_t>(tally.streams.load() + 1)) {
    std::this_thread::yield();
    m = engine.metrics();
  }
  EXPECT_EQ(m->kv_blocks_used, 0);
  EXPECT_EQ(m->requests_finished, static_cast<uint64_t>(tally.streams.load() + 1));
  std::printf("soak: length %d stop %d cancelled %d timeout %d rejected %d preemptions %llu\n",
              tally.length.load(), tally.stop.load(), tally.cancelled.load(), tally.timeout.load(),
              tally.rejected.load(), static_cast<unsigned long long>(m->preemptions));
}

}  // namespace
}  // namespace autoglm
