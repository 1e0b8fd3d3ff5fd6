// The request scheduler and response reader of `autoglm bench serve`; see runner.h.
// Thread ownership: see runner.h (everything here runs on the io_context's single thread).
#include "runner.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <deque>
#include <memory>

#include "core/error.h"
#include "sse_parser.h"

namespace autoglm::bench {
namespace {

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

class Runner {
 public:
  Runner(boost::asio::io_context& io, const ServerAddress& address, const HttpClientOptions& http,
         const RunOptions& options, std::vector<PlannedRequest> plan)
      : io_(io),
        client_(io, address, http),
        options_(options),
        plan_(std::move(plan)),
        records_(plan_.size()),
        timer_(io) {}

  RunOutcome run() {
    start_ = Clock::now();
    last_finish_ = start_;
    schedule_arrivals();
    io_.run();
    return RunOutcome{std::move(records_), seconds_between(start_, last_finish_), peak_};
  }

 private:
  // Queues every request whose arrival time has come, sends what the concurrency limit
  // allows, and sets the timer for the next arrival.
  void schedule_arrivals() {
    const double now_s = seconds_between(start_, Clock::now());
    while (next_arrival_ < plan_.size() && plan_[next_arrival_].arrival_s <= now_s) {
      waiting_.push_back(next_arrival_++);
    }
    dispatch();
    if (next_arrival_ == plan_.size()) return;
    timer_.expires_at(start_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(plan_[next_arrival_].arrival_s)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) schedule_arrivals();
    });
  }

  void dispatch() {
    while (!waiting_.empty() &&
           (options_.max_concurrency <= 0 || in_flight_ < options_.max_concurrency)) {
      const size_t index = waiting_.front();
      waiting_.pop_front();
      send(index);
    }
  }

  // Per-request state that the client's handlers share.
  struct Live {
    explicit Live(RequestRecord& record) : recorder(record) {}
    SseParser parser;
    StreamRecorder recorder;
    Clock::time_point sent;
    bool stream_over = false;
  };

  void send(size_t index) {
    PlannedRequest& planned = plan_[index];
    RequestRecord& record = records_[index];
    record.planned_input_tokens = planned.input_tokens;
    record.planned_output_tokens = planned.output_tokens;
    auto live = std::make_shared<Live>(record);
    live->sent = Clock::now();
    record.start_s = seconds_between(start_, live->sent);
    ++in_flight_;
    peak_ = std::max(peak_, in_flight_);

    HttpExchange exchange;
    exchange.method = "POST";
    exchange.target = options_.endpoint;
    exchange.body = std::move(planned.body);
    exchange.on_body = [live](std::string_view bytes, Clock::time_point arrived) {
      const double elapsed = seconds_between(live->sent, arrived);
      try {
        live->parser.feed(bytes, [&](SseEvent&& event) {
          if (!live->stream_over) live->stream_over = !live->recorder.on_data(event.data, elapsed);
        });
      } catch (const Error& e) {
        live->recorder.fail(e.what(), elapsed);
        live->stream_over = true;
      }
      return !live->stream_over;
    };
    exchange.on_complete = [this, live](HttpResult&& result) {
      const double elapsed = seconds_between(live->sent, result.finished);
      if (!result.error.empty()) {
        live->recorder.fail(std::move(result.error), elapsed);
      } else {
        live->recorder.finish(elapsed);
      }
      on_request_done(result.finished);
    };
    client_.start(std::move(exchange));
  }

  void on_request_done(Clock::time_point finished) {
    --in_flight_;
    ++completed_;
    last_finish_ = std::max(last_finish_, finished);
    const size_t step = std::max<size_t>(1, plan_.size() / 10);
    if (options_.show_progress && (completed_ % step == 0 || completed_ == plan_.size())) {
      std::fprintf(stderr, "  %zu/%zu requests done (%.1f s)\n", completed_, plan_.size(),
                   seconds_between(start_, finished));
    }
    dispatch();
  }

  boost::asio::io_context& io_;
  HttpClient client_;
  RunOptions options_;
  std::vector<PlannedRequest> plan_;
  std::vector<RequestRecord> records_;
  boost::asio::steady_timer timer_;
  std::deque<size_t> waiting_;
  size_t next_arrival_ = 0;
  int32_t in_flight_ = 0;
  int32_t peak_ = 0;
  size_t completed_ = 0;
  Clock::time_point start_, last_finish_;
};

}  // namespace

RunOutcome run_requests(const ServerAddress& address, const HttpClientOptions& http,
                        const RunOptions& options, std::vector<PlannedRequest> plan) {
  boost::asio::io_context io(1);
  Runner runner(io, address, http, options, std::move(plan));
  return runner.run();
}

}  // namespace autoglm::bench
