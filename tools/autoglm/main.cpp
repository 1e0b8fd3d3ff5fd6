// The `autoglm` command-line tool: a thin layer that parses flags and calls the libraries.
// Any autoglm::Error escaping a command becomes one clear line on stderr and exit status 1.
// Library log lines (device choice, KV pool size, weight upload) go to stderr at warn and above,
// so that a command's stdout carries only its output and an error stays one line; `serve`
// replaces the logger with JSON lines at its --log-level.
// Thread ownership: main thread.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("autoglm"));
  spdlog::set_level(spdlog::level::warn);
  CLI::App app{"Open-AutoGLM: inference engine and server for GLM-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "autoglm 0.1.0");
  int exit_code = 0;
  // Each sub-command registers itself here (see commands.h).
  autoglm::cli::register_inspect(app, &exit_code);
#ifndef AUTOGLM_CLI_INSPECT_ONLY  // autoglm_inspect (tools/autoglm/CMakeLists.txt)
  autoglm::cli::register_tokenize(app, &exit_code);
  autoglm::cli::register_template(app, &exit_code);
  autoglm::cli::register_generate(app, &exit_code);
  autoglm::cli::register_chat(app, &exit_code);
  autoglm::cli::register_bench(app, &exit_code);
  autoglm::cli::register_serve(app, &exit_code);
  autoglm::cli::register_audit(app, &exit_code);
  autoglm::cli::register_signing(app, &exit_code);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const autoglm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 2;
  }
  return exit_code;
}
