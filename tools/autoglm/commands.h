// Sub-commands of the `autoglm` CLI. Each cmd_*.cpp registers one sub-command on the app;
// its callback stores the process exit code in `*exit_code`. Thread ownership: main thread.
#pragma once

#include <CLI/CLI.hpp>

namespace autoglm::cli {

void register_inspect(CLI::App& app, int* exit_code);   // cmd_inspect.cpp
void register_tokenize(CLI::App& app, int* exit_code);  // cmd_tokenize.cpp
void register_template(CLI::App& app, int* exit_code);  // cmd_template.cpp
void register_generate(CLI::App& app, int* exit_code);  // cmd_generate.cpp
void register_chat(CLI::App& app, int* exit_code);      // cmd_chat.cpp
void register_bench(CLI::App& app, int* exit_code);     // cmd_bench.cpp
void register_serve(CLI::App& app, int* exit_code);     // cmd_serve.cpp
void register_audit(CLI::App& app, int* exit_code);     // cmd_audit.cpp
void register_signing(CLI::App& app, int* exit_code);   // cmd_sign.cpp: keygen, sign, verify

}  // namespace autoglm::cli
