// Structured logs: one JSON object per line on stdout through spdlog, with `ts` (UTC, ms),
// `level`, `msg` and caller fields (request_id, trace_id, route, status, latencies, token
// counts). Prompts and outputs must never be passed in. The JSON is built by nlohmann::json, so
// escaping (quotes, control characters, invalid UTF-8) is always right.
// Thread ownership: any thread (spdlog's mt sink serialises lines).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace autoglm::server {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Installs the JSON logger as spdlog's default and sets the minimum level ("debug", "info",
// "warn", "error"). Throws Error(kInvalidArgument) for another level name.
void init_json_logging(std::string_view level);

// The line (without newline) that log_json would write, for tests.
std::string format_log_line(LogLevel level, std::string_view msg, const nlohmann::json& fields);

void log_json(LogLevel level, std::string_view msg, const nlohmann::json& fields = {});

}  // namespace autoglm::server
