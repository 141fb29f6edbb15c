// The FasterRCNN against torchvision (tests/fixtures/detector.pt, made by
// tools/golden/make_detector_fixtures.py): anchors, box coder, FPN, proposals, detections in
// eval mode, and the four losses in train mode with the samplers seeded alike.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "spnas/models/detection/anchors.h"
#include "spnas/models/detection/box_coder.h"
#include "spnas/models/detection/faster_rcnn.h"
#include "spnas/models/state_dict.h"
#include "tests/fixture.h"
#include "tests/tiny_detector.h"

namespace spnas {
namespace {

using spnas::testing::CpuAutocast;
using spnas::testing::ErrorOf;

using ::testing::HasSubstr;

class DetectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fixture_ = new auto(testing::LoadFixture("tests/fixtures/detector.pt")); }
  static const at::Tensor& F(const std::string& key) { return fixture_->at(key); }

  void SetUp() override {
    model_ = std::make_shared<FasterRCNN>(testing::FixtureDetectorOptions());
    StateDict state;
    for (const auto& [key, value] : *fixture_) {
      if (key.rfind("model.", 0) == 0) state[key.substr(6)] = value;
    }
    const LoadReport report = LoadStateDict(*model_, state);
    ASSERT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty()) << report.Summary();
    images_ = {F("image0"), F("image1")};
  }

  std::vector<Target> Targets() const {
    return {{F("target0.boxes"), F("target0.labels")}, {F("target1.boxes"), F("target1.labels")}};
  }

  static double MaxDiff(const at::Tensor& a, const at::Tensor& b) {
    EXPECT_EQ(a.sizes(), b.sizes());
    if (a.sizes() != b.sizes()) return 1e9;
    return a.numel() == 0 ? 0.0 : (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  }

  static std::map<std::string, at::Tensor>* fixture_;
  std::shared_ptr<FasterRCNN> model_;
  std::vector<at::Tensor> images_;
};
std::map<std::string, at::Tensor>* DetectorTest::fixture_ = nullptr;

TEST_F(DetectorTest, ParameterNamesAndCountMatchTorchvision) {
  int64_t expected = 0, ours = 0;
  for (const auto& [key, value] : *fixture_) {
    if (key.rfind("model.", 0) == 0 && key.find("running_") == std::string::npos &&
        key.find("num_batches_tracked") == std::string::npos) {
      expected += value.numel();
    }
  }
  for (const auto& p : model_->parameters()) ours += p.numel();
  EXPECT_EQ(ours, expected);
}

TEST_F(DetectorTest, BoxCoderMatchesTorchvision) {
  BoxCoder coder({10, 10, 5, 5});
  EXPECT_LT(MaxDiff(coder.Encode(F("coder.reference"), F("coder.proposals")), F("coder.encoded")), 1e-5);
  EXPECT_LT(MaxDiff(coder.Decode(F("coder.rel_codes"), F("coder.proposals")), F("coder.decoded")), 1e-5);
}

TEST_F(DetectorTest, FeaturesAnchorsAndProposalsMatchTorchvision) {
  model_->eval();
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> features = model_->backbone()->forward(F("batch.tensors"));
  ASSERT_EQ(features.size(), 5u);
  for (size_t i = 0; i < features.size(); ++i) {
    EXPECT_LT(MaxDiff(features[i], F("features." + std::to_string(i))), 1e-5) << "level " << i;
  }
  TransformOptions t;
  t.min_size = {128};
  t.max_size = 192;
  const ImageBatch ours = DetectionTransform(t)(images_, nullptr, false);
  EXPECT_LT(MaxDiff(ours.tensors, F("batch.tensors")), 1e-5) << "the resized, normalised, padded batch";
  AnchorGenerator anchors({{16}, {32}, {64}, {128}, {256}}, std::vector<std::vector<double>>(5, {0.5, 1.0, 2.0}));
  const at::Tensor batch = F("batch.tensors");
  EXPECT_LT(MaxDiff(anchors(batch.size(2), batch.size(3), features), F("anchors")), 1e-5);
}

TEST_F(DetectorTest, EvalDetectionsMatchTorchvision) {
  model_->eval();
  torch::NoGradGuard no_grad;
  const DetectorOutput out = model_->Forward(images_);
  ASSERT_EQ(out.detections.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const std::string k = "detections." + std::to_string(i) + ".";
    SCOPED_TRACE(k);
    EXPECT_TRUE(at::equal(out.detections[i].labels, F(k + "labels")));
    EXPECT_LT(MaxDiff(out.detections[i].boxes, F(k + "boxes")), 1e-4);
    EXPECT_LT(MaxDiff(out.detections[i].scores, F(k + "scores")), 1e-4);
  }
}

TEST_F(DetectorTest, TrainLossesMatchTorchvisionWithTheSameSamplerSeed) {
  model_->train();
  torch::manual_seed(123);
  const std::vector<Target> targets = Targets();
  const DetectorOutput out = model_->Forward(images_, &targets);
  for (const char* name : {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(out.losses.count(name));
    EXPECT_NEAR(out.losses.at(name).item<double>(), F(std::string("losses.") + name).item<double>(), 1e-4);
  }
  // Gradients flow back into every trainable parameter.
  at::Tensor total = at::zeros({});
  for (const auto& [name, loss] : out.losses) total = total + loss;
  total.backward();
  for (const auto& item : model_->named_parameters()) {
    EXPECT_TRUE(item.value().grad().defined()) << item.key();
  }
}

// The dtypes FasterRCNN::Forward states, under autocast: features in bfloat16; anchors,
// decoded boxes, detections and losses in float32.
TEST_F(DetectorTest, UnderAutocastTheForwardKeepsBoxesAndLossesInFloat32) {
  CpuAutocast autocast;
  {
    torch::NoGradGuard no_grad;
    const std::vector<at::Tensor> features = model_->backbone()->forward(F("batch.tensors"));
    for (const at::Tensor& f : features) EXPECT_EQ(f.scalar_type(), at::kBFloat16);
    AnchorGenerator anchors({{16}, {32}, {64}, {128}, {256}}, std::vector<std::vector<double>>(5, {0.5, 1.0, 2.0}));
    const at::Tensor batch = F("batch.tensors");
    const at::Tensor a = anchors(batch.size(2), batch.size(3), features);
    EXPECT_EQ(a.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(a, F("anchors"))) << "anchors are integer boxes, exact in float32";
    const at::Tensor decoded =
        BoxCoder({10, 10, 5, 5}).Decode(F("coder.rel_codes").to(at::kBFloat16), F("coder.proposals"));
    EXPECT_EQ(decoded.scalar_type(), at::kFloat);

    model_->eval();
    const DetectorOutput out = model_->Forward(images_);
    for (const Detections& d : out.detections) {
      EXPECT_EQ(d.boxes.scalar_type(), at::kFloat);
      EXPECT_EQ(d.scores.scalar_type(), at::kFloat);
      EXPECT_EQ(d.labels.scalar_type(), at::kLong);
    }
  }
  model_->train();
  torch::manual_seed(123);
  const std::vector<Target> targets = Targets();
  const DetectorOutput out = model_->Forward(images_, &targets);
  at::Tensor total = at::zeros({});
  for (const char* name : {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}) {
    SCOPED_TRACE(name);
    const at::Tensor& loss = out.losses.at(name);
    EXPECT_EQ(loss.scalar_type(), at::kFloat);
    // torchvision's float32 losses, with the samplers seeded alike: bfloat16 keeps 8 significant
    // bits, so the network's outputs differ by about 1%; proposals near a threshold (IoU, top-k,
    // NMS) then change the RoI heads' sample, which moves loss_classifier by up to about 7%.
    const double expected = F(std::string("losses.") + name).item<double>();
    EXPECT_NEAR(loss.item<double>(), expected, 0.1 * expected + 0.01);
    total = total + loss;
  }
  total.backward();
  for (const auto& item : model_->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_EQ(item.value().grad().scalar_type(), at::kFloat) << item.key();
    EXPECT_TRUE(at::isfinite(item.value().grad()).all().item<bool>()) << item.key();
  }
}

TEST_F(DetectorTest, NegativeImageTrainsAsInTorchvision) {
  model_->train();
  torch::manual_seed(7);
  const std::vector<Target> targets = {{at::zeros({0, 4}), at::zeros({0}, at::kLong)}};
  const DetectorOutput out = model_->Forward({images_[1]}, &targets);
  for (const char* name : {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}) {
    SCOPED_TRACE(name);
    EXPECT_NEAR(out.losses.at(name).item<double>(), F(std::string("negative_losses.") + name).item<double>(), 1e-4);
  }
}

TEST_F(DetectorTest, BadInputsGiveClearErrors) {
  model_->train();
  std::vector<Target> degenerate = {{at::tensor({10.0f, 10.0f, 5.0f, 20.0f}).view({1, 4}), at::tensor({1}, at::kLong)}};
  EXPECT_THAT(ErrorOf([&] { model_->Forward({images_[0]}, &degenerate); }),
              HasSubstr("all boxes need positive height and width; target 0 box 0"));
  std::vector<Target> bad_label = {{at::tensor({1.0f, 1.0f, 5.0f, 20.0f}).view({1, 4}), at::tensor({7}, at::kLong)}};
  EXPECT_THAT(ErrorOf([&] { model_->Forward({images_[0]}, &bad_label); }), HasSubstr("labels outside 1..4"));
  // Double boxes promote with the float anchors, as in torchvision's box_iou.
  std::vector<Target> double_boxes = {{at::tensor({1.0, 1.0, 5.0, 20.0}).view({1, 4}), at::tensor({1}, at::kLong)}};
  EXPECT_EQ(ErrorOf([&] { model_->Forward({images_[0]}, &double_boxes); }), "no error");
  EXPECT_THAT(ErrorOf([&] { model_->Forward({images_[0]}); }), HasSubstr("targets are required in training mode"));
  model_->eval();
  EXPECT_THAT(ErrorOf([&] {
                model_->Forward({at::rand({1, 20, 20})});
              }),
              HasSubstr("image 0 should be a [3, H, W] tensor, got [1, 20, 20]"));
  EXPECT_THAT(ErrorOf([&] {
                model_->Forward({at::zeros({3, 20, 20}, at::kByte)});
              }),
              HasSubstr("should be floating point"));
}

TEST_F(DetectorTest, TinyImagesStillGiveDetectionsOrAClearError) {
  // A 2x2 image is resized up to min_size, so it works like any other.
  model_->eval();
  torch::NoGradGuard no_grad;
  const DetectorOutput out = model_->Forward({at::rand({3, 2, 2})});
  EXPECT_EQ(out.detections.size(), 1u);
}

}  // namespace
}  // namespace spnas
