// `autoglm chat`: an interactive multi-turn REPL. Reads one user message per stdin line until
// EOF or `/exit`; `/reset` forgets the conversation (keeping --system). Each turn re-renders the
// chat template over the whole history and submits it to the Engine, whose prefix cache holds
// the KV of the previous turns' full blocks, so only the tail from the last shared full block
// on is prefilled. No terminal assumptions: works through a pipe or tmux, the reply is flushed
// at the end of every turn, and stats go to stderr.
// Thread ownership: main thread (the Engine runs its own engine thread).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "generation_cli.h"

namespace autoglm::cli {
namespace {

struct ChatArgs {
  GenerationFlags gen;
  std::string system;
  bool show_prompt_tokens = false;
};

Json fresh_history(const std::string& system) {
  Json messages = Json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  return messages;
}

void print_prompt_tokens(const std::vector<int32_t>& prompt) {
  std::string line = "[prompt token ids:";
  for (const int32_t id : prompt) line += " " + std::to_string(id);
  std::fprintf(stderr, "%s]\n", line.c_str());
}

// One turn: on a per-turn error (context or KV budget exceeded, template failure) the user's
// message is dropped and the REPL goes on; the error is one `error:` line on stderr.
void chat_turn(ModelSession& session, const ChatArgs& args, Json& history,
               const std::string& user_text, int turn) {
  Json attempt = history;
  attempt.push_back({{"role", "user"}, {"content", user_text}});
  try {
    const std::vector<int32_t> prompt = session.encode_chat(attempt);
    if (args.show_prompt_tokens) print_prompt_tokens(prompt);
    const CliGeneration r = session.generate(prompt, args.gen.sampling, args.gen.stop,
                                             [](std::string_view text) { write_stdout(text); });
    write_stdout("\n");
    attempt.push_back({{"role", "assistant"}, {"content", r.text}});
    history = std::move(attempt);
    std::fprintf(stderr,
                 "[turn %d: %d prompt tokens (%d cached), %zu generated, finish_reason=%s]\n", turn,
                 r.usage.prompt_tokens, r.usage.cached_prompt_tokens, r.tokens.size(),
                 std::string(finish_cause_name(r.finish)).c_str());
  } catch (const Error& e) {
    write_stdout("\n");
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  std::fflush(stderr);
}

int run_chat(ChatArgs& args) {
  finalize_generation_flags(args.gen);
  ModelSession session(args.gen);
  session.require_chat_template();  // fail now, not at the first turn, if there is none
  const bool interactive = isatty(STDIN_FILENO) != 0;
  Json history = fresh_history(args.system);
  int turn = 0;
  std::string line;
  while (true) {
    if (interactive) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF from some terminals
    if (line == "/exit") break;
    if (line == "/reset") {
      history = fresh_history(args.system);
      std::fputs("[conversation reset]\n", stderr);
      continue;
    }
    if (line.empty()) continue;
    chat_turn(session, args, history, line, ++turn);
  }
  return 0;
}

}  // namespace

void register_chat(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ChatArgs>();
  args->gen.sampling.temperature = 0.0f;  // greedy unless asked otherwise, like generate
  args->gen.stop.max_tokens = 256;
  CLI::App* cmd = app.add_subcommand(
      "chat", "Interactive multi-turn chat on stdin/stdout (/reset, /exit; CPU backend)");
  cmd->add_option("--system", args->system, "System message for the whole conversation");
  cmd->add_flag("--show-prompt-tokens", args->show_prompt_tokens,
                "Print each turn's prompt token ids on stderr");
  add_generation_flags(cmd, args->gen);
  cmd->callback([args, exit_code] { *exit_code = run_chat(*args); });
}

}  // namespace autoglm::cli
