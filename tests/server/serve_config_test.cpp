// Serve configuration: precedence flags > env > file > defaults, unknown keys and bad values
// are errors naming the key, every setting reachable by flag, env and file.
// Thread ownership: test thread.
#include "server/serve_config.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"

namespace autoglm::server {
namespace {

ConfigLayer model_only() {
  return {{"model", "models/x"}};
}

TEST(ServeConfig, DefaultsWhenOnlyTheModelIsGiven) {
  ServeConfig config = resolve_serve_config({}, {}, model_only());
  EXPECT_EQ(config.http.host, "127.0.0.1");
  EXPECT_EQ(config.http.port, 8080);
  EXPECT_EQ(config.http.io_threads, 2);
  EXPECT_EQ(config.engine.model_path, "models/x");
  EXPECT_TRUE(config.engine.enable_prefix_caching);
  EXPECT_FALSE(config.http.log_request_bodies);  // bodies reach logs only when asked
}

TEST(ServeConfig, FlagsBeatEnvBeatFileBeatDefaults) {
  ConfigLayer file = parse_config_yaml(
      "model: from-file\nport: 1000\nmax_num_seqs: 3\nheader_timeout: 2.5\nlog_request_bodies: "
      "true\n",
      "test.yaml");
  std::map<std::string, std::string> environment = {{"AUTOGLM_PORT", "2000"},
                                                    {"AUTOGLM_MAX_NUM_SEQS", "5"}};
  ConfigLayer env = config_from_env([&](const char* name) -> const char* {
    auto found = environment.find(name);
    return found == environment.end() ? nullptr : found->second.c_str();
  });
  ConfigLayer flags = {{"port", "3000"}};
  ServeConfig config = resolve_serve_config(file, env, flags);
  EXPECT_EQ(config.http.port, 3000);                 // flag
  EXPECT_EQ(config.engine.max_num_seqs, 5);          // env over file
  EXPECT_EQ(config.engine.model_path, "from-file");  // file over default
  EXPECT_EQ(config.http.limits.header_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(config.http.io_threads, 2);  // default
  EXPECT_TRUE(config.http.log_request_bodies);
}

TEST(ServeConfig, UnknownFileKeyIsAnErrorNamingIt) {
  try {
    parse_config_yaml("model: x\nmax_num_sqs: 4\n", "serve.yaml");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("max_num_sqs"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("serve.yaml"), std::string::npos);
  }
}

TEST(ServeConfig, BadValuesNameTheKeyAndSource) {
  try {
    resolve_serve_config({}, {{"port", "70000"}}, model_only());
    FAIL() << "no error";
  } catch (const Error& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("port"), std::string::npos) << message;
    EXPECT_NE(message.find("environment"), std::string::npos) << message;
  }
  EXPECT_THROW(resolve_serve_config({}, {}, {{"model", "m"}, {"warmup", "maybe"}}), Error);
  EXPECT_THROW(resolve_serve_config({}, {}, {{"model", "m"}, {"drain_timeout", "-1"}}), Error);
  EXPECT_THROW(resolve_serve_config({}, {}, {{"model", "m"}, {"max_body_bytes", "1e3"}}), Error);
  EXPECT_THROW(resolve_serve_config({}, {}, {}), Error);  // no model
  EXPECT_THROW(resolve_serve_config({}, {}, {{"model", "m"}, {"kv_cache_dtype", "int4"}}), Error);
  EXPECT_EQ(resolve_serve_config({}, {}, {{"model", "m"}, {"kv_cache_dtype", "fp8"}})
                .engine.kv_cache_dtype,
            "fp8");
  EXPECT_THROW(resolve_serve_config({}, {}, {{"model", "m"}, {"quantization", "awq"}}), Error);
  EXPECT_EQ(
      resolve_serve_config({}, {}, {{"model", "m"}, {"quantization", "fp8"}}).engine.quantization,
      "fp8");
  EXPECT_EQ(resolve_serve_config({}, {}, {{"model", "m"}}).engine.quantization, "none");
}

TEST(ServeConfig, MalformedOrNestedYamlIsRejected) {
  // Only `model` takes a list (several models, server/models/); any other key must be a scalar.
  EXPECT_THROW(parse_config_yaml("port: [a, b]\n", "f"), Error);
  EXPECT_THROW(parse_config_yaml("model: {a: b}\n", "f"), Error);
  EXPECT_EQ(parse_config_yaml("model: [a, b]\n", "f"), (ConfigLayer{{"model", "a,b"}}));
  EXPECT_THROW(parse_config_yaml("- model\n", "f"), Error);
  EXPECT_THROW(parse_config_yaml("model: {\n", "f"), Error);
  EXPECT_TRUE(parse_config_yaml("", "f").empty());
}

TEST(ServeConfig, EverySettingAppliesItsDefaultBack) {
  // show() then apply() of each default must succeed: the table and the parsers agree.
  ServeConfig defaults;
  for (const ConfigSetting& setting : serve_config_settings()) {
    ServeConfig copy;
    std::string shown = setting.show(defaults);
    if (shown.empty()) continue;  // empty strings (model, tls) have no default to re-apply
    EXPECT_NO_THROW(setting.apply(copy, shown)) << setting.key << "=" << shown;
    EXPECT_EQ(setting.show(copy), shown) << setting.key;
    EXPECT_EQ(flag_name(setting.key).substr(0, 2), "--");
  }
  EXPECT_EQ(flag_name("max_num_seqs"), "--max-num-seqs");
  EXPECT_EQ(env_name("max_num_seqs"), "AUTOGLM_MAX_NUM_SEQS");
}

}  // namespace
}  // namespace autoglm::server
