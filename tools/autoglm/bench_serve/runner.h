// Drives one `autoglm bench serve` run: sends every request at its arrival time (Poisson
// schedule), holds back requests beyond --max-concurrency until one finishes, reads the
// streamed responses and records what each one measured. One io_context on the calling
// thread carries every request.
// Thread ownership: run_requests() runs on, and returns to, the caller's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "http_client.h"
#include "request_record.h"

namespace autoglm::bench {

struct PlannedRequest {
  std::string body;      // the JSON request body
  double arrival_s = 0;  // when to send it, from the start of the run
  int32_t input_tokens = 0;
  int32_t output_tokens = 0;
};

struct RunOutcome {
  std::vector<RequestRecord> records;  // in the order of the plan
  double duration_s = 0;               // first send to last completion
  int32_t peak_concurrency = 0;
};

struct RunOptions {
  std::string endpoint = "/v1/completions";
  int32_t max_concurrency = 0;  // 0: no limit
  bool show_progress = true;    // a line on stderr at every tenth of the requests
};

RunOutcome run_requests(const ServerAddress& address, const HttpClientOptions& http,
                        const RunOptions& options, std::vector<PlannedRequest> plan);

}  // namespace autoglm::bench
