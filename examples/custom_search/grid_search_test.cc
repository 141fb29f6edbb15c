// Runs examples/custom_search/grid_search.textproto: the config selects GridSearch by name.
#include <filesystem>

#include <gtest/gtest.h>

#include "spnas/core/record_store.h"
#include "spnas/pipeline/pipeline.h"

namespace {

TEST(GridSearchExampleTest, ConfigRunsTheCustomAlgorithmOverTheWholeGrid) {
  const std::string base = std::string(std::getenv("TEST_TMPDIR")) + "/grid";
  spnas::ConfigLoadOptions options;
  options.local_base_path = base;
  auto config = spnas::LoadAndValidate("examples/custom_search/grid_search.textproto", options);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(spnas::RunPipeline(*config, spnas::RunOptions()).ok());

  auto trials = spnas::RecordStore(base + "/output/grid/trials").LoadAll();
  ASSERT_TRUE(trials.ok()) << trials.status();
  ASSERT_EQ(trials->size(), 6u);
  std::set<std::string> seen;
  for (const spnas::Trial& t : *trials) {
    seen.insert(t.record.hyperparameters().at("network.hidden") + "/" +
                t.record.hyperparameters().at("network.inputs"));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"8/2", "24/2", "40/2", "8/4", "24/4", "40/4"}));
}

}  // namespace
