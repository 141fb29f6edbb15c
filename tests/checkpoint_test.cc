// Reading torch.save files (tests/fixtures/checkpoints, made by
// tools/golden/make_checkpoint_fixtures.py): zip and legacy formats, OrderedDict with
// _metadata, nested checkpoints, refusal of code, and a converted torchvision detector that
// reproduces torchvision's outputs.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "spnas/core/files.h"
#include "spnas/models/checkpoint.h"
#include "spnas/models/detection/faster_rcnn.h"
#include "spnas/models/state_dict.h"
#include "tests/fixture.h"
#include "tests/tiny_detector.h"

namespace spnas {
namespace {

using ::testing::HasSubstr;

const char kDir[] = "tests/fixtures/checkpoints/";

TEST(CheckpointTest, ReadsZipLegacyAndNestedStateDicts) {
  const auto expected = testing::LoadFixture(std::string(kDir) + "small_values.pt");
  for (const char* file : {"small_zip.pth", "small_legacy.pth", "small_nested.pth"}) {
    SCOPED_TRACE(file);
    auto state = LoadWeights(std::string(kDir) + file);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->size(), expected.size());
    for (const auto& [name, tensor] : expected) {
      ASSERT_TRUE(state->count(name)) << name;
      EXPECT_TRUE(at::equal(state->at(name), tensor)) << name;
    }
  }
}

TEST(CheckpointTest, RefusesPicklesThatNameCode) {
  auto state = LoadWeights(std::string(kDir) + "evil.pth");
  ASSERT_FALSE(state.ok());
  EXPECT_THAT(state.status().message(), HasSubstr("unsupported pickle global 'posix.system'"));
  EXPECT_THAT(state.status().message(), HasSubstr("no code is run"));
}

// LibTorch's own pickler tags the dict with its type; spnas's reader reads it too.
TEST(CheckpointTest, ReadsLibTorchPickleSave) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/libtorch.pth";
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("w", at::arange(6, at::kFloat).view({2, 3}));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  ASSERT_TRUE(WriteFileAtomic(path, std::string(bytes.begin(), bytes.end())).ok());
  auto back = LoadWeights(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(back->at("w"), dict.at("w")));
}

TEST(CheckpointTest, SavedWeightsReadBack) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/w.pth";
  StateDict state = {{"a", at::rand({2, 3})}, {"b.c", at::arange(5)}};
  ASSERT_TRUE(SaveWeights(path, state).ok());
  auto back = LoadWeights(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(back->at("a"), state.at("a")));
  EXPECT_TRUE(at::equal(back->at("b.c"), state.at("b.c")));
}

TEST(CheckpointTest, ConvertedTorchvisionDetectorReproducesItsOutputs) {
  auto state = LoadWeights(std::string(kDir) + "tiny_frcnn_legacy.pth");
  ASSERT_TRUE(state.ok()) << state.status();
  FasterRCNN model(testing::FixtureDetectorOptions(5));
  const LoadReport report = LoadStateDict(model, *state);
  ASSERT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty()) << report.Summary();
  const auto fixture = testing::LoadFixture("tests/fixtures/detector.pt");
  model.eval();
  torch::NoGradGuard no_grad;
  const DetectorOutput out = model.Forward({fixture.at("image0"), fixture.at("image1")});
  for (int i = 0; i < 2; ++i) {
    const std::string k = "detections." + std::to_string(i) + ".";
    EXPECT_TRUE(at::equal(out.detections[i].labels, fixture.at(k + "labels")));
    EXPECT_LT((out.detections[i].boxes - fixture.at(k + "boxes")).abs().max().item<double>(), 1e-4);
  }
}

TEST(CheckpointTest, AnotherClassCountLeavesOnlyThePredictorUnloaded) {
  auto state = LoadWeights(std::string(kDir) + "tiny_frcnn_legacy.pth");
  ASSERT_TRUE(state.ok());
  FasterRCNN model(testing::FixtureDetectorOptions(3));
  const LoadReport report = LoadStateDict(model, *state);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty());
  ASSERT_EQ(report.mismatched.size(), 4u) << report.Summary();
  for (const auto& m : report.mismatched) EXPECT_THAT(m, HasSubstr("roi_heads.box_predictor."));
}

}  // namespace
}  // namespace spnas
