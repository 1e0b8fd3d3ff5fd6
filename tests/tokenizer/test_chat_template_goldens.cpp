// Golden test: every template fixture x case rendered by our Jinja engine must be
// byte-identical to transformers' output (scripts/make_template_goldens.py), and must raise
// where transformers raised. Thread ownership: test main thread.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/chat_template.h"

namespace fs = std::filesystem;
using autoglm::ChatTemplate;
using autoglm::Json;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ChatTemplateGoldens, EveryCaseMatchesTransformers) {
  const fs::path fixtures = AUTOGLM_FIXTURES_DIR;
  size_t checked = 0;
  for (const auto& tdir : fs::directory_iterator(fixtures / "template_goldens")) {
    const std::string tname = tdir.path().filename().string();
    const std::string source = read_all(fixtures / "templates" / (tname + ".jinja"));
    ASSERT_FALSE(source.empty()) << tname;
    ChatTemplate tmpl = ChatTemplate::compile(source, tname + ".jinja");
    for (const auto& entry : fs::directory_iterator(tdir.path())) {
      if (entry.path().extension() != ".json") continue;
      const Json c = Json::parse(read_all(entry.path()));
      fs::path txt = entry.path();
      txt.replace_extension(".txt");
      fs::path err = entry.path();
      err.replace_extension(".error");
      SCOPED_TRACE(entry.path().string());
      ++checked;
      if (fs::exists(err)) {
        EXPECT_THROW(tmpl.render(c["messages"], c["tools"], c["add_generation_prompt"].get<bool>(),
                                 c["extra"]),
                     autoglm::Error);
        continue;
      }
      ASSERT_TRUE(fs::exists(txt));
      std::string got;
      try {
        got = tmpl.render(c["messages"], c["tools"], c["add_generation_prompt"].get<bool>(),
                          c["extra"])
                  .text;
      } catch (const autoglm::Error& e) {
        ADD_FAILURE() << "render failed: " << e.what();
        continue;
      }
      EXPECT_EQ(got, read_all(txt));
    }
  }
  EXPECT_GE(checked, 60u);
}

}  // namespace
