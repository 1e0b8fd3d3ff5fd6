// The `autoglm` command-line tool: a thin layer that parses flags and calls the libraries.
// Any autoglm::Error escaping a command becomes one clear line on stderr and exit status 1.
// Thread ownership: main thread.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Open-AutoGLM: inference engine and server for GLM-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "autoglm 0.1.0");
  int exit_code = 0;
  // Each sub-command registers itself here (see commands.h).
  autoglm::cli::register_inspect(app, &exit_code);
  autoglm::cli::register_tokenize(app, &exit_code);
  autoglm::cli::register_template(app, &exit_code);
  autoglm::cli::register_generate(app, &exit_code);
  autoglm::cli::register_chat(app, &exit_code);
  autoglm::cli::register_bench(app, &exit_code);
  autoglm::cli::register_serve(app, &exit_code);
  autoglm::cli::register_audit(app, &exit_code);
  autoglm::cli::register_signing(app, &exit_code);
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
