// `autoglm tokenize`: encode text or decode ids with a tokenizer.json, for debugging and for
// the Python parity tests (--jsonl batch mode: one request object per line, one result per
// line, so a whole corpus runs in one process). Thread ownership: main thread.
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::cli {
namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::string text;
  std::string decode;
  std::string jsonl;
  bool special = false;
  bool add_special_tokens = false;
  bool skip_special = false;
};

std::vector<uint32_t> parse_id_list(const std::string& csv) {
  std::vector<uint32_t> ids;
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v > UINT32_MAX) {
      fail(ErrorCode::kInvalidArgument, "--decode: \"" + item + "\" is not a token id");
    }
    ids.push_back(static_cast<uint32_t>(v));
  }
  return ids;
}

SpecialTokenPolicy parse_policy(const Json& req, size_t line) {
  const std::string p = req.value("special", std::string("none"));
  if (p == "all") return SpecialTokenPolicy::kAll;
  if (p == "none") return SpecialTokenPolicy::kNone;
  if (p == "except_untrusted") return SpecialTokenPolicy::kExceptUntrusted;
  fail(ErrorCode::kInvalidArgument, "--jsonl line " + std::to_string(line) + ": bad \"special\"");
}

// One batch request: {"text": s, "special": "all"|"none"|"except_untrusted",
// "untrusted": [[b, e], ...], "add_special_tokens": bool} -> {"ids": [...]}, or
// {"ids": [...], "skip_special_tokens": bool} -> {"text": s, "stream": [pieces...]}.
Json run_request(const Tokenizer& tok, const Json& req, size_t line) {
  Json result = Json::object();
  if (req.contains("text")) {
    EncodeOptions opts;
    opts.special = parse_policy(req, line);
    opts.add_special_tokens = req.value("add_special_tokens", false);
    std::vector<ByteRange> ranges;
    for (const auto& r : req.value("untrusted", Json::array())) {
      ranges.push_back({r.at(0).get<size_t>(), r.at(1).get<size_t>()});
    }
    opts.untrusted = ranges;
    result["ids"] = tok.encode(req["text"].get<std::string>(), opts);
    return result;
  }
  const auto ids = req.at("ids").get<std::vector<uint32_t>>();
  const bool skip = req.value("skip_special_tokens", false);
  result["text"] = tok.decode(ids, skip);
  IncrementalDetokenizer stream(tok, skip);
  Json pieces = Json::array();
  for (const uint32_t id : ids) pieces.push_back(stream.push(id));
  pieces.push_back(stream.finish());
  result["stream"] = std::move(pieces);
  return result;
}

void run_jsonl(const Tokenizer& tok, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kNotFound, "--jsonl: cannot open " + path);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    Json out;
    try {
      const Json req = parse_json_limited(line, path + ":" + std::to_string(line_no), 16,
                                          ErrorCode::kInvalidArgument);
      out = run_request(tok, req, line_no);
    } catch (const Error& e) {
      out = Json{{"error", e.what()}};
    } catch (const Json::exception& e) {
      out = Json{{"error", std::string("bad request: ") + e.what()}};
    }
    std::cout << out.dump() << '\n';
  }
}

void run_tokenize(const TokenizeArgs& args) {
  const Tokenizer tok = Tokenizer::load(args.tokenizer);
  if (!args.jsonl.empty()) return run_jsonl(tok, args.jsonl);
  if (!args.decode.empty()) {
    std::cout << Json(tok.decode(parse_id_list(args.decode), args.skip_special)).dump() << '\n';
    return;
  }
  EncodeOptions opts;
  opts.special = args.special ? SpecialTokenPolicy::kAll : SpecialTokenPolicy::kNone;
  opts.add_special_tokens = args.add_special_tokens;
  std::cout << Json(tok.encode(args.text, opts)).dump() << '\n';
}

}  // namespace

void register_tokenize(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text / decode ids with tokenizer.json");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json or a model directory")
      ->required();
  cmd->add_option("--text", args->text, "text to encode (prints ids as JSON)");
  cmd->add_option("--decode", args->decode, "comma-separated ids to decode (prints a JSON string)");
  cmd->add_option("--jsonl", args->jsonl, "batch: a file of JSON requests, one per line");
  cmd->add_flag("--special", args->special, "recognise special tokens in --text");
  cmd->add_flag("--add-special-tokens", args->add_special_tokens, "apply the post-processor");
  cmd->add_flag("--skip-special", args->skip_special, "drop special tokens when decoding");
  cmd->callback([args, exit_code] {
    run_tokenize(*args);
    *exit_code = 0;
  });
}

}  // namespace autoglm::cli
