// What `autoglm bench serve` measures about one request, and how the events of an OpenAI
// streaming response (completions or chat completions) turn into those measurements.
// Conventions, following vLLM's `bench serve`:
// - TTFT: from sending the request (connection set-up included) to the first chunk whose
//   text (`choices[0].text`, or `choices[0].delta.content` / `reasoning_content` for chat)
//   is non-empty. Role-only and empty chunks are not tokens.
// - ITL: one sample per later content chunk, the gap since the previous content chunk. A
//   chunk that carries k > 1 tokens still gives one sample (as vLLM records it); TPOT below
//   spreads the decode time over every token.
// - TPOT: (e2e - ttft) / (output_tokens - 1), for requests with more than one output token.
// - Output tokens: `usage.completion_tokens` of the final usage chunk (requested with
//   stream_options.include_usage); without it, the number of content chunks.
// - Success: HTTP 200, no error event, and the stream ended with `data: [DONE]`.
// Thread ownership: one record per request, touched by the client thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace autoglm::bench {

struct RequestRecord {
  int32_t planned_input_tokens = 0;   // the prompt length the workload built
  int32_t planned_output_tokens = 0;  // max_tokens sent
  bool success = false;
  std::string error;   // why it failed (HTTP status and body, network, timeout)
  double start_s = 0;  // when it was sent, seconds since the benchmark began
  double ttft_s = 0;
  double e2e_s = 0;
  std::vector<double> itl_s;  // inter-chunk gaps after the first content chunk
  int32_t content_chunks = 0;
  std::optional<int32_t> usage_prompt_tokens;
  std::optional<int32_t> usage_completion_tokens;
  bool done_seen = false;  // `data: [DONE]` arrived

  int32_t output_tokens() const { return usage_completion_tokens.value_or(content_chunks); }
  int32_t input_tokens() const { return usage_prompt_tokens.value_or(planned_input_tokens); }
  // Time per output token after the first, or nullopt with fewer than two output tokens.
  std::optional<double> tpot_s() const;
};

// Folds the events of one streaming response into a RequestRecord. Times are seconds since
// the request was sent.
class StreamRecorder {
 public:
  explicit StreamRecorder(RequestRecord& record) : record_(record) {}

  // One SSE `data` payload that arrived at `elapsed_s`. Returns false when the stream is
  // over ([DONE] or an error event); the record then says which.
  bool on_data(std::string_view data, double elapsed_s);
  // The response finished (the HTTP body ended) at `elapsed_s`: sets e2e and success.
  void finish(double elapsed_s);
  // The request failed before or during the response.
  void fail(std::string message, double elapsed_s);

 private:
  RequestRecord& record_;
  double last_content_s_ = 0;
  bool failed_ = false;
};

}  // namespace autoglm::bench
