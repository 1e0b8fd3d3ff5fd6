// `autoglm generate`: loads a model directory, encodes a prompt (optionally through the model's
// chat template) and streams a continuation to stdout through the public Engine API (one
// request, submit + RequestStream), or with --json prints one JSON object (tokens with
// logprobs, finish reason, usage, timings).
// Thread ownership: main thread (the Engine runs its own engine thread).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "generation_cli.h"

namespace autoglm::cli {
namespace {

struct GenerateArgs {
  GenerationFlags gen;
  std::string prompt;
  std::string system;
  bool chat = false;
  bool json = false;
};

Json token_json(const Tokenizer& tokenizer, int32_t id) {
  const uint32_t ids[1] = {static_cast<uint32_t>(id)};
  return Json{{"id", id}, {"text", tokenizer.decode(ids, /*skip_special_tokens=*/false)}};
}

Json result_json(const CliGeneration& r, const Tokenizer& tokenizer) {
  Json tokens = Json::array();
  for (const CliToken& t : r.tokens) {
    Json token = token_json(tokenizer, t.id);
    if (t.logprobs) {
      token["logprob"] = t.logprobs->chosen.logprob;
      Json top = Json::array();
      for (const TokenLogprob& alt : t.logprobs->top) {
        Json entry = token_json(tokenizer, alt.id);
        entry["logprob"] = alt.logprob;
        top.push_back(std::move(entry));
      }
      token["top_logprobs"] = std::move(top);
    }
    tokens.push_back(std::move(token));
  }
  const int32_t completion = static_cast<int32_t>(r.tokens.size());
  const double decode_s = r.decode_ms / 1000.0;
  return Json{{"text", r.text},
              {"tokens", std::move(tokens)},
              {"finish_reason", finish_cause_name(r.finish)},
              {"stop", r.stop ? Json(*r.stop) : Json()},
              {"usage",
               {{"prompt_tokens", r.usage.prompt_tokens},
                {"completion_tokens", completion},
                {"total_tokens", r.usage.prompt_tokens + completion}}},
              {"timings",
               {{"prefill_ms", r.prefill_ms},
                {"decode_ms", r.decode_ms},
                // The first token comes from the prefill's logits: decode produced the other n - 1.
                {"decode_tokens_per_s",
                 completion > 1 && decode_s > 0 ? (completion - 1) / decode_s : 0.0}}}};
}

int run_generate(GenerateArgs& args) {
  finalize_generation_flags(args.gen);
  ModelSession session(args.gen);
  std::vector<int32_t> prompt;
  if (args.chat) {
    Json messages = Json::array();
    if (!args.system.empty()) messages.push_back({{"role", "system"}, {"content", args.system}});
    messages.push_back({{"role", "user"}, {"content", args.prompt}});
    prompt = session.encode_chat(messages);
  } else {
    prompt = session.encode_raw(args.prompt);
  }
  const auto stream = [&](std::string_view text) {
    if (!args.json) write_stdout(text);
  };
  const CliGeneration r =
      session.generate(std::move(prompt), args.gen.sampling, args.gen.stop, stream);
  if (args.json) {
    write_stdout(
        result_json(r, session.tokenizer()).dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  write_stdout("\n");
  const double total_s = (r.prefill_ms + r.decode_ms) / 1000.0;
  std::fprintf(stderr, "[%d prompt tokens, %zu generated, %.1f tok/s, finish_reason=%s]\n",
               r.usage.prompt_tokens, r.tokens.size(), r.tokens.size() / total_s,
               std::string(finish_cause_name(r.finish)).c_str());
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<GenerateArgs>();
  args->gen.sampling.temperature = 0.0f;  // the CLI is greedy unless asked otherwise
  args->gen.stop.max_tokens = 64;
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt (CPU backend)");
  cmd->add_option("--prompt", args->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", args->chat, "Apply the model's chat template to the prompt");
  cmd->add_option("--system", args->system, "System message (with --chat)");
  cmd->add_flag("--json", args->json, "Print one JSON object at the end instead of streaming");
  add_generation_flags(cmd, args->gen);
  cmd->callback([args, exit_code] { *exit_code = run_generate(*args); });
}

}  // namespace autoglm::cli
