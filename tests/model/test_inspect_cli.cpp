// The malformed-model corpus, run through the real CLI: each case starts from a valid synthetic
// model directory, breaks one thing, runs `autoglm inspect --model DIR`, and asserts exit
// status 1 with exactly one stderr line `error: ...` naming the file (and tensor, if any).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "model_test_util.h"

namespace autoglm {
namespace {

using test::TempDir;
using test::write_file;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the CLI with stdout/stderr redirected to files (no shell, no quoting issues).
CliResult run_inspect(const std::string& model_dir, const TempDir& scratch) {
  const std::string out_path = scratch.file("stdout.txt"), err_path = scratch.file("stderr.txt");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execl(AUTOGLM_CLI, AUTOGLM_CLI, "inspect", "--model", model_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_file(out_path);
  r.err = test::read_file(err_path);
  return r;
}

struct BadCase {
  const char* name;
  std::function<void(const TempDir&)> breakit;
  std::vector<std::string> must_mention;  // file name and, where relevant, tensor name
};

void rewrite_weights(const TempDir& d, const std::function<void(test::SafetensorsBuilder&)>& f) {
  auto w = test::tiny_llama_weights();
  f(w);
  write_file(d.file("model.safetensors"), w.build());
}

std::vector<BadCase> bad_cases() {
  const std::string k = "model.layers.0.self_attn.k_proj.weight";
  return {
      {"truncated_weights",
       [](const TempDir& d) {
         std::string b = test::tiny_llama_weights().build();
         write_file(d.file("model.safetensors"), b.substr(0, b.size() - 100));
       },
       {"model.safetensors", "lm_head.weight"}},
      {"file_shorter_than_length",
       [](const TempDir& d) { write_file(d.file("model.safetensors"), "\x05\x00"); },
       {"model.safetensors", "too short"}},
      {"header_length_past_eof",
       [](const TempDir& d) {
         std::string b = test::tiny_llama_weights().build();
         b[3] = 0x01;
         write_file(d.file("model.safetensors"), b);
       },
       {"model.safetensors", "past the end of the file"}},
      {"huge_header",
       [](const TempDir& d) {
         write_file(d.file("model.safetensors"),
                    std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
       },
       {"model.safetensors", "exceeds the limit"}},
      {"non_json_header",
       [](const TempDir& d) {
         write_file(d.file("model.safetensors"), test::safetensors_bytes("{nope", ""));
       },
       {"model.safetensors", "not valid JSON"}},
      {"lying_offsets",
       [k](const TempDir& d) {
         rewrite_weights(d, [k](auto& w) {
           w.header()[k]["data_offsets"][0] = 4;
           w.header()[k]["data_offsets"][1] = 132;
         });
       },
       {"model.safetensors", k}},
      {"wrong_dtype",
       [k](const TempDir& d) {
         rewrite_weights(d, [k](auto& w) { w.header()[k]["dtype"] = "F64"; });
       },
       {"model.safetensors", k, "F64"}},
      {"quantized_dtype",
       [k](const TempDir& d) {
         rewrite_weights(d, [k](auto& w) { w.header()[k]["dtype"] = "Q4"; });
       },
       {"model.safetensors", k, "Q4"}},
      {"wrong_shape",
       [k](const TempDir& d) {
         rewrite_weights(d, [k](auto& w) { w.header()[k]["shape"] = {2, 16}; });
       },
       {"model.safetensors", k, "[2, 16]", "[4, 8]"}},
      {"shape_bytes_mismatch",
       [k](const TempDir& d) {
         rewrite_weights(d, [k](auto& w) { w.header()[k]["shape"] = {5, 8}; });
       },
       {"model.safetensors", k}},
      {"missing_tensor",
       [](const TempDir& d) {
         rewrite_weights(d, [](auto& w) {
           w.header().erase("lm_head.weight");
           w.data().resize(w.data().size() - 512);
         });
       },
       {"model.safetensors", "lm_head.weight", "missing"}},
      {"unknown_architecture",
       [](const TempDir& d) {
         Json c = test::tiny_llama_config();
         c["architectures"] = {"GPT2LMHeadModel"};
         write_file(d.file("config.json"), c.dump());
       },
       {"config.json", "GPT2LMHeadModel", "Glm4ForCausalLM"}},
      {"negative_hidden_size",
       [](const TempDir& d) {
         Json c = test::tiny_llama_config();
         c["hidden_size"] = -8;
         write_file(d.file("config.json"), c.dump());
       },
       {"config.json", "hidden_size"}},
      {"pickle_only",
       [](const TempDir& d) {
         ::unlink(d.file("model.safetensors").c_str());
         write_file(d.file("pytorch_model.bin"), "pickle");
       },
       {"pytorch_model.bin", "pickle"}},
      {"index_escapes_directory",
       [](const TempDir& d) {
         write_file(d.file("model.safetensors.index.json"),
                    R"({"weight_map": {"model.norm.weight": "../../etc/x.safetensors"}})");
       },
       {"model.safetensors.index.json", "../../etc/x.safetensors"}},
      {"non_utf8_tokenizer",
       [](const TempDir& d) {
         write_file(d.file("tokenizer.json"),
                    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\xfe\": 0}}}");
       },
       {"tokenizer.json", "UTF-8"}},
      {"template_that_loops",
       [](const TempDir& d) {
         write_file(d.file("tokenizer_config.json"),
                    R"({"chat_template": "{% for i in range(1000000000) %}{% endfor %}"})");
       },
       {"tokenizer_config.json", "limit"}},
      {"template_that_explodes",
       [](const TempDir& d) {
         write_file(
             d.file("tokenizer_config.json"),
             R"({"chat_template": "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}"})");
       },
       {"tokenizer_config.json", "limit"}},
  };
}

TEST(InspectCli, ValidModelPrintsSummary) {
  TempDir dir, scratch;
  test::write_tiny_llama(dir.path());
  const CliResult r = run_inspect(dir.path(), scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("LlamaForCausalLM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("parameters:     856"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eos ids:        2, 3"), std::string::npos) << r.out;
}

TEST(InspectCli, MalformedCorpusFailsWithOneNamedErrorLine) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.name);
    TempDir dir, scratch;
    test::write_tiny_llama(dir.path());
    c.breakit(dir);
    const CliResult r = run_inspect(dir.path(), scratch);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected exactly one line: " << r.err;
    for (const std::string& word : c.must_mention) {
      EXPECT_NE(r.err.find(word), std::string::npos) << "missing '" << word << "' in " << r.err;
    }
  }
}

// Every real fixture model (tests/fixtures/models/<name>/) inspects cleanly, when present.
TEST(InspectCli, FixtureModelsInspectCleanly) {
  const std::filesystem::path root = std::string(AUTOGLM_FIXTURES_DIR) + "/models";
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) GTEST_SKIP() << "no fixtures at " << root;
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!std::filesystem::exists(entry.path() / "config.json")) continue;
    SCOPED_TRACE(entry.path().string());
    TempDir scratch;
    const CliResult r = run_inspect(entry.path().string(), scratch);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("eos ids:"), std::string::npos) << r.out;
    ++seen;
  }
  if (seen == 0) GTEST_SKIP() << "no model directories under " << root;
}

}  // namespace
}  // namespace autoglm
