// The model settings (`model` entries, preload and pin lists, YAML lists, --check-config's
// inputs) and the /metrics merge of several engines' texts (each family once).
// Thread ownership: the test thread.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "server/models/model_metrics.h"
#include "server/models/model_spec.h"
#include "server/serve_config.h"

namespace autoglm::server::models {
namespace {

TEST(ModelSpecs, BareDirectoryKeepsTodaysNaming) {
  auto specs = parse_model_specs("models/autoglm-tiny/", "");
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].name, "autoglm-tiny");
  EXPECT_EQ(specs[0].dir, "models/autoglm-tiny/");
  specs = parse_model_specs("models/autoglm-tiny", "served");
  EXPECT_EQ(specs[0].name, "served");
}

TEST(ModelSpecs, NamedEntriesAndTheirChecks) {
  const auto specs = parse_model_specs("glm=/m/glm4, /m/llama-tiny ,qwen=/m/a=b", "");
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].name, "glm");
  EXPECT_EQ(specs[0].dir, "/m/glm4");
  EXPECT_EQ(specs[1].name, "llama-tiny");
  EXPECT_EQ(specs[2].dir, "/m/a=b");
  EXPECT_THROW(parse_model_specs("a=/x,a=/y", ""), Error);  // duplicate name
  EXPECT_THROW(parse_model_specs("", ""), Error);
  EXPECT_THROW(parse_model_specs("a=", ""), Error);
  EXPECT_FALSE(valid_model_name("../x"));
  EXPECT_FALSE(valid_model_name(".."));
  EXPECT_FALSE(valid_model_name("a/b"));
  EXPECT_TRUE(valid_model_name("glm-4.9b:chat_v1"));
}

TEST(ModelSpecs, ModelLists) {
  const auto specs = parse_model_specs("a=/x,b=/y", "");
  EXPECT_EQ(resolve_model_list("preload_models", "all", specs),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(resolve_model_list("preload_models", "none", specs).empty());
  EXPECT_TRUE(resolve_model_list("pinned_models", "", specs).empty());
  EXPECT_EQ(resolve_model_list("pinned_models", "b, b", specs), (std::vector<std::string>{"b"}));
  try {
    resolve_model_list("preload_models", "a,c", specs);
    ADD_FAILURE() << "an unknown name was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("preload_models names 'c'"), std::string::npos);
  }
}

TEST(ModelSpecs, EstimateCountsWeightsAndTheKvPool) {
  EngineOptions options;
  options.kv_cache_bytes = 1000;
  const std::string dir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";
  const uint64_t bytes = estimate_model_bytes(dir, options, 0);
  EXPECT_GT(bytes, 1000u + 100'000u);                            // the fixture's weights are ~1 MB
  EXPECT_EQ(estimate_model_bytes(dir, options, 12345), 12345u);  // GPU: the engine's share
  EXPECT_GT(host_memory_available(), 0u);
}

TEST(ModelSettings, ServeConfigResolvesModelsFromEveryLayer) {
  const ServeConfig config = resolve_serve_config(
      parse_config_yaml("model:\n  - a=/m/a\n  - /m/b\npinned_models: a\n", "test.yaml"), {},
      {{"preload_models", "b"}, {"model_memory_budget", "1000"}, {"model_load_wait", "2.5"}});
  ASSERT_EQ(config.models.size(), 2u);
  EXPECT_EQ(config.models[1].name, "b");
  EXPECT_EQ(config.engine.model_path, "/m/a");
  EXPECT_EQ(config.preload_models, "b");
  EXPECT_EQ(config.pinned_models, "a");
  EXPECT_EQ(config.model_memory_budget, 1000u);
  EXPECT_EQ(config.model_load_wait, std::chrono::milliseconds(2500));
  EXPECT_THROW(resolve_serve_config({}, {{"model", "a=/x"}}, {{"pinned_models", "zz"}}), Error);
  EXPECT_THROW(parse_config_yaml("model:\n  - {a: b}\n", "t.yaml"), Error);
}

TEST(ModelMetrics, MergeKeepsEachFamilyOnce) {
  const std::string first =
      "# HELP x_total X.\n# TYPE x_total counter\nx_total{m=\"a\"} 1\n"
      "# HELP shared Shared.\n# TYPE shared gauge\nshared 3\n";
  const std::string second =
      "# HELP x_total X.\n# TYPE x_total counter\nx_total{m=\"b\"} 2\n"
      "# HELP shared Shared.\n# TYPE shared gauge\nshared 0\n";
  const std::string merged = merge_metric_families({first, second}, {"shared"});
  EXPECT_EQ(merged,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{m=\"a\"} 1\nx_total{m=\"b\"} 2\n"
            "# HELP shared Shared.\n# TYPE shared gauge\nshared 3\n");
  EXPECT_EQ(metric_family_names(first), (std::set<std::string>{"x_total", "shared"}));
}

}  // namespace
}  // namespace autoglm::server::models
