// JSON log lines via spdlog. log_json writes through its own logger (pattern "%v": the whole
// line is ours); spdlog's default logger, which other subsystems call with plain text (the
// engine's device choice, ...), gets a formatter that wraps each message into the same JSON
// shape, so stdout stays one JSON object per line. Thread ownership: any thread.
#include "server/json_log.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "core/error.h"

namespace autoglm::server {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string utc_timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  char with_millis[48];
  std::snprintf(with_millis, sizeof(with_millis), "%s.%03dZ", buffer,
                static_cast<int>(millis.count()));
  return with_millis;
}

constexpr const char* kJsonLoggerName = "autoglm-json";

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LogLevel::kDebug;
    case spdlog::level::warn:
      return LogLevel::kWarn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return LogLevel::kError;
    default:
      return LogLevel::kInfo;
  }
}

// For the default logger: a plain-text message becomes {"ts","level","msg"}.
class WrapAsJsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = format_log_line(from_spdlog(msg.level),
                                       std::string_view(msg.payload.data(), msg.payload.size()),
                                       nlohmann::json::object());
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<WrapAsJsonFormatter>();
  }
};

}  // namespace

void init_json_logging(std::string_view level) {
  LogLevel parsed;
  if (level == "debug") {
    parsed = LogLevel::kDebug;
  } else if (level == "info") {
    parsed = LogLevel::kInfo;
  } else if (level == "warn") {
    parsed = LogLevel::kWarn;
  } else if (level == "error") {
    parsed = LogLevel::kError;
  } else {
    fail(ErrorCode::kInvalidArgument,
         "log level must be debug, info, warn or error, not '" + std::string(level) + "'");
  }
  // A sink each (a sink owns the formatter); stdout sinks share spdlog's console mutex, which
  // keeps their lines whole.
  auto json_logger = std::make_shared<spdlog::logger>(
      kJsonLoggerName, std::make_shared<spdlog::sinks::stdout_sink_mt>());
  json_logger->set_pattern("%v");
  auto wrapping_logger = std::make_shared<spdlog::logger>(
      "autoglm", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  wrapping_logger->set_formatter(std::make_unique<WrapAsJsonFormatter>());
  for (auto* logger : {json_logger.get(), wrapping_logger.get()}) {
    logger->set_level(to_spdlog(parsed));
    logger->flush_on(spdlog::level::trace);  // one line per event, visible at once
  }
  spdlog::drop(kJsonLoggerName);
  spdlog::register_logger(std::move(json_logger));
  spdlog::set_default_logger(std::move(wrapping_logger));
}

std::string format_log_line(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  nlohmann::ordered_json line;
  line["ts"] = utc_timestamp();
  line["level"] = level_name(level);
  line["msg"] = std::string(msg);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      if (key != "ts" && key != "level" && key != "msg") line[key] = value;
    }
  }
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void log_json(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  // Before init_json_logging (tests), the default logger writes the line as its message.
  std::shared_ptr<spdlog::logger> logger = spdlog::get(kJsonLoggerName);
  if (!logger) logger = spdlog::default_logger();
  if (!logger->should_log(to_spdlog(level))) return;
  logger->log(to_spdlog(level), "{}", format_log_line(level, msg, fields));
}

}  // namespace autoglm::server
