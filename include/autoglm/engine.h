// The public C++ API of the inference engine: construct an Engine from EngineOptions, submit
// requests from any thread, read each request's stream of token/text deltas (ending with a
// finish reason and usage), cancel, or call generate() to block for the whole answer. The CLI,
// the server and the Python binding are thin layers over this header.
// Self-contained: it includes only standard headers and include/autoglm/*.h (install the
// include/ tree and link the autoglm libraries).
// Thread ownership: an Engine starts one engine thread that owns the model, the scheduler, the
// KV cache and the backend. Every public member of Engine may be called from any thread. A
// RequestStream may be moved to another thread but read by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autoglm/logprobs.h"
#include "autoglm/metrics.h"
#include "autoglm/sampling.h"

namespace autoglm {

struct EngineOptions {
  std::string model_path;
  std::string device = "auto";     // "auto" (the GPU when usable, else the CPU), "cpu", "cuda[:N]"
  int64_t max_context_length = 0;  // 0: the model's max_position_embeddings
  double memory_fraction = 0.0;    // GPU: share of total device memory for weights, workspace
                                   // and KV together, taken once (0: 0.90)
  bool cuda_graphs = true;         // GPU: replay decode steps from CUDA graphs
  // GPU: the KV cache's element type, "auto" (the activation type) or "fp8" (E4M3, unscaled:
  // half the bytes per token, so about twice the tokens in the same memory; values saturate at
  // +-448).
  std::string kv_cache_dtype = "auto";
  // GPU: "none" (the checkpoint's weights in the activation type) or "fp8": the layer
  // projections quantized at load to FP8 E4M3 with a scale per output channel, their inputs per
  // token each step, multiplied on the FP8 tensor cores (W8A8). Half the weight bytes; the
  // logits move (docs/OPERATIONS.md).
  std::string quantization = "none";
  // Schedule and submit step N + 1 while the backend runs step N (its sampled tokens are fed
  // back on the device), so the device does not wait for the host between steps. Steps whose
  // sampling reads the token history (repetition, presence, frequency penalties) still wait.
  bool overlap_scheduling = true;
  uint64_t kv_cache_bytes = 256ull << 20;  // CPU KV budget (ignored when num_kv_blocks > 0)
  int32_t num_kv_blocks = 0;               // > 0: exactly this many blocks (tests, benchmarks)
  int32_t kv_block_size = 16;              // tokens per KV block
  int32_t max_num_seqs = 64;               // sequences per step
  int32_t max_batched_tokens = 512;        // tokens per step (decode + chunked prefill)
  int32_t max_queued_requests = 1024;      // submitted but not yet started; beyond: kQueueFull
  int64_t max_queued_tokens = 1 << 20;     // their prompt tokens; beyond: kQueueFull
  bool enable_prefix_caching = true;
  // Verify the KV pool's invariants after every step also in release builds (debug builds,
  // without NDEBUG, always do).
  bool check_invariants = false;
  // Sessions (GenerationRequest::session_id): a finished turn's KV stays pinned this long
  // after the turn ends (0: sessions off), under a cap of pinned blocks for all sessions
  // together (0: a quarter of the pool); over it, the least recently used session goes first.
  std::chrono::seconds session_ttl{300};
  int32_t session_max_blocks = 0;
  // Test builds only (CMake AUTOGLM_FAULT_INJECTION): "throw:N", "nan:N" or "hang" makes the
  // backend's next forward calls fail that way (backend/fault_injection.h). Empty: none. Other
  // builds reject a non-empty value.
  std::string fault_injection;
};

// Whether an EngineOptions::kv_cache_dtype names the FP8 cache: "fp8" (also "fp8_e4m3") true,
// "auto" false, anything else kInvalidArgument. The config file, the CLI and the Engine all
// check the value through it.
bool kv_cache_is_fp8(const std::string& kv_cache_dtype);
// Whether an EngineOptions::quantization names FP8 weights: "fp8" true, "none" false, anything
// else kInvalidArgument (checked the same way by the config file, the CLI and the Engine).
bool weights_are_fp8(const std::string& quantization);

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;  // used when non-empty
  std::string prompt;               // else encoded (BOS etc. added as the tokenizer says)
  SamplingParams sampling;
  StopParams stop;
  int32_t priority = 0;  // lower is served first; first come, first served within a class
  std::string tenant;    // prefix-cache salt: different tenants never share cached KV
  // Multi-turn continuation: when this turn ends (stop or length), its prompt + output KV stays
  // pinned for EngineOptions::session_ttl, so the next turn of the same session (same tenant),
  // whose prompt starts with those tokens, skips their prefill. Empty: no session.
  std::string session_id;
  std::optional<std::chrono::milliseconds> timeout;        // end-to-end, from submit
  std::optional<std::chrono::milliseconds> queue_timeout;  // until the first step, from submit
};

enum class FinishCause { kStop, kLength, kCancelled, kTimeout, kError };
std::string_view finish_cause_name(FinishCause cause);  // "stop", "length", "cancelled", ...

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens whose prefill the prefix cache skipped
};

// One piece of a stream. The last one has `finish` set (and may carry tokens too).
struct StreamDelta {
  std::vector<int32_t> token_ids;
  std::string text;  // never splits a UTF-8 character; stop strings are never included
  std::optional<FinishCause> finish;
  std::optional<std::string> stop;  // the stop string or "token:<id>" that matched
  std::string error;                // with kError
  Usage usage;                      // filled in the last delta
  std::vector<Logprobs> logprobs;   // one per token_ids entry when sampling.logprobs
};

struct GenerationOutput {
  std::vector<int32_t> token_ids;
  std::string text;
  FinishCause finish = FinishCause::kLength;
  std::optional<std::string> stop;
  std::string error;
  Usage usage;
  std::vector<Logprobs> logprobs;  // one per token when sampling.logprobs
};

// A submit the engine will not take now. The server maps kQueueFull to 429 with Retry-After.
class RequestRejected : public std::runtime_error {
 public:
  enum class Reason { kQueueFull, kTooLong, kDeadlineUnreachable, kShuttingDown };
  RequestRejected(Reason reason, std::string message, double retry_after_s = 0.0)
      : std::runtime_error(std::move(message)), reason_(reason), retry_after_s_(retry_after_s) {}
  Reason reason() const { return reason_; }
  double retry_after_s() const { return retry_after_s_; }

 private:
  Reason reason_;
  double retry_after_s_;
};

namespace detail {
class TokenChannel;
}
class Tokenizer;
struct ModelConfig;

// Receives a request's deltas on the engine thread, in order, the last with `finish` set. It
// must not block (post the delta to the caller's own executor) and must not throw.
using DeltaCallback = std::function<void(StreamDelta)>;

class RequestStream {
 public:
  explicit RequestStream(uint64_t id, std::shared_ptr<detail::TokenChannel> channel);
  uint64_t id() const { return id_; }
  // Blocks until the next delta; nullopt after the final delta has been returned.
  std::optional<StreamDelta> next();

 private:
  uint64_t id_;
  std::shared_ptr<detail::TokenChannel> channel_;
};

class Engine {
 public:
  // Loads the model and starts the engine thread. Throws autoglm::Error on a bad model or
  // options (e.g. a cuda device in a CPU-only build).
  explicit Engine(EngineOptions options);
  // Stops the engine thread; requests still live end with kCancelled.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Throws autoglm::Error(kInvalidArgument) for bad parameters
  // and RequestRejected when the queue is full, the request cannot fit the context or the KV
  // pool, or cannot start before its deadline at the measured throughput.
  RequestStream submit(GenerationRequest request);
  // The same, delivering each delta to `on_delta` on the engine thread (for asynchronous
  // callers such as the HTTP server). Returns the request id for cancel().
  uint64_t submit(GenerationRequest request, DeltaCallback on_delta);
  // Ends the request within one step (its blocks are freed); a no-op once it has finished.
  void cancel(uint64_t request_id);
  // submit() and read the stream to its end.
  GenerationOutput generate(GenerationRequest request);

  std::vector<int32_t> encode(std::string_view text) const;
  // The loaded model's tokenizer and configuration (immutable after construction, so safe to
  // use from any thread).
  const Tokenizer& tokenizer() const;
  const ModelConfig& model_config() const;
  const EngineOptions& options() const;
  // The engine thread's last published metrics (gauges, counters, latency histograms).
  std::shared_ptr<const EngineMetricsSnapshot> metrics() const;
  bool engine_thread_alive() const;

 private:
  uint64_t enqueue(GenerationRequest request, std::shared_ptr<detail::TokenChannel> channel);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace autoglm
