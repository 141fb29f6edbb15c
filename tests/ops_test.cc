// NMS, box IoU and RoIAlign against torchvision (tests/fixtures/ops.pt, made by
// tools/golden/make_ops_fixtures.py), plus input checks.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "spnas/ops/box_iou/box_iou.h"
#include "spnas/ops/nms/nms.h"
#include "spnas/ops/roi_align/roi_align.h"
#include "tests/fixture.h"

namespace spnas::ops {
namespace {

using spnas::testing::CpuAutocast;
using spnas::testing::ErrorOf;

using ::testing::HasSubstr;

class OpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fixture_ = new auto(testing::LoadFixture("tests/fixtures/ops.pt")); }
  static const at::Tensor& F(const std::string& key) { return fixture_->at(key); }
  static std::map<std::string, at::Tensor>* fixture_;
};
std::map<std::string, at::Tensor>* OpsTest::fixture_ = nullptr;

void ExpectSameIndices(const at::Tensor& ours, const at::Tensor& theirs) {
  ASSERT_EQ(ours.sizes(), theirs.sizes());
  EXPECT_TRUE(at::equal(ours, theirs.to(at::kLong)));
}

TEST_F(OpsTest, NmsKeepsTheSameIndicesAsTorchvision) {
  for (const char* t : {"0.3", "0.5", "0.7"}) {
    SCOPED_TRACE(t);
    ExpectSameIndices(Nms(F("nms.boxes"), F("nms.scores"), std::stod(t)), F(std::string("nms.keep_") + t));
  }
}

TEST_F(OpsTest, BatchedNmsMatchesTorchvisionInBothStrategies) {
  ExpectSameIndices(BatchedNms(F("nms.boxes"), F("nms.scores"), F("nms.idxs"), 0.5), F("nms.batched_keep"));
  ExpectSameIndices(BatchedNms(F("nms.big_boxes"), F("nms.big_scores"), F("nms.big_idxs"), 0.5),
                    F("nms.big_batched_keep"));
}

TEST_F(OpsTest, BoxIouMatchesTorchvision) {
  EXPECT_TRUE(at::allclose(BoxIou(F("iou.a"), F("iou.b")), F("iou.iou"), 1e-6, 1e-6));
}

TEST_F(OpsTest, RoiAlignForwardAndGradientMatchTorchvision) {
  for (int aligned = 0; aligned <= 1; ++aligned) {
    for (int ratio : {-1, 0, 1, 2, 3}) {
      const std::string key = "roi." + std::to_string(aligned) + "_" + std::to_string(ratio);
      SCOPED_TRACE(key);
      at::Tensor input = F("roi.input").clone().requires_grad_(true);
      at::Tensor out = RoiAlign(input, F("roi.rois"), 0.25, 5, 4, ratio, aligned);
      EXPECT_LT((out - F(key + ".out")).abs().max().item<double>(), 1e-5);
      out.backward(F("roi.grad"));
      EXPECT_LT((input.grad() - F(key + ".grad_input")).abs().max().item<double>(), 1e-5);
    }
  }
}

TEST_F(OpsTest, RoiAlignIsTheSameWithOneThreadAndMany) {
  const at::Tensor input = F("roi.input").to(at::kFloat);
  const at::Tensor rois = F("roi.rois").to(at::kFloat);
  const at::Tensor grad = F("roi.grad").to(at::kFloat);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor out1 = RoiAlignForward(input, rois, 0.25, 5, 4, 2, false);
  const at::Tensor back1 = RoiAlignBackward(grad, rois, 0.25, 5, 4, 2, 3, 13, 17, 2, false);
  at::set_num_threads(4);
  EXPECT_TRUE(at::equal(out1, RoiAlignForward(input, rois, 0.25, 5, 4, 2, false)));
  EXPECT_TRUE(at::equal(back1, RoiAlignBackward(grad, rois, 0.25, 5, 4, 2, 3, 13, 17, 2, false)));
  at::set_num_threads(threads);
}

TEST(OpsInputTest, BadInputsGiveClearErrors) {
  const at::Tensor boxes = at::rand({4, 4});
  EXPECT_THAT(ErrorOf([&] {
                Nms(at::rand({4, 3}), at::rand({4}), 0.5);
              }),
              HasSubstr("nms: boxes should be a [N, 4] tensor, got [4, 3]"));
  EXPECT_THAT(ErrorOf([&] { Nms(boxes, at::rand({5}), 0.5); }),
              HasSubstr("boxes and scores should have the same number of elements, got 4 and 5"));
  EXPECT_THAT(ErrorOf([&] { Nms(boxes, at::rand({4}, at::kDouble), 0.5); }),
              HasSubstr("boxes and scores should have the same dtype, got Float and Double"));
  EXPECT_THAT(ErrorOf([&] {
                RoiAlign(at::rand({1, 2, 4, 4}), at::rand({3, 4}), 1, 2, 2, 2, false);
              }),
              HasSubstr("rois should be a [K, 5] tensor of (batch index, x1, y1, x2, y2), got [3, 4]"));
  EXPECT_THAT(ErrorOf([&] {
                RoiAlign(at::rand({2, 4, 4}), at::rand({3, 5}), 1, 2, 2, 2, false);
              }),
              HasSubstr("input should be a [N, C, H, W] tensor, got [2, 4, 4]"));
  EXPECT_THAT(ErrorOf([&] {
                RoiAlign(at::rand({1, 2, 4, 4}), at::rand({3, 5}, at::kDouble), 1, 2, 2, 2, false);
              }),
              HasSubstr("input and rois should have the same dtype"));
  // Half precision has CUDA kernels only.
  EXPECT_THAT(ErrorOf([&] {
                RoiAlign(at::rand({1, 2, 4, 4}, at::kHalf), at::rand({3, 5}, at::kHalf), 1, 2, 2, 2, false);
              }),
              HasSubstr("the CPU kernel takes float and double tensors, got Half"));
  EXPECT_THAT(ErrorOf([&] {
                Nms(at::rand({4, 4}, at::kHalf), at::rand({4}, at::kHalf), 0.5);
              }),
              HasSubstr("the CPU kernel takes float and double boxes, got Half"));
  EXPECT_THAT(ErrorOf([&] { BoxIou(at::rand({2, 4}), at::rand({2, 5})); }), HasSubstr("boxes2 should be a [N, 4]"));
}

// As torchvision registers Autocast kernels for nms and roi_align: under autocast they run in
// float32 whatever the dtypes they are given, and RoIAlign hands back its input's dtype.
TEST_F(OpsTest, UnderAutocastNmsAndRoiAlignRunInFloat32) {
  const at::Tensor rois = F("roi.rois").to(at::kFloat);
  const at::Tensor boxes = F("nms.boxes"), scores = F("nms.scores").to(at::kBFloat16);
  const at::Tensor keep = Nms(boxes, scores.to(at::kFloat), 0.5);
  const at::Tensor batched_keep = BatchedNms(boxes, scores.to(at::kFloat), F("nms.idxs"), 0.5);
  const at::Tensor input = F("roi.input").to(at::kBFloat16);
  const at::Tensor pooled = RoiAlign(input.to(at::kFloat), rois, 0.25, 5, 4, 2, false);
  // Outside autocast, float32 boxes with bfloat16 scores are refused, as by torchvision.
  EXPECT_THAT(ErrorOf([&] { Nms(boxes, scores, 0.5); }), HasSubstr("should have the same dtype"));
  CpuAutocast autocast;
  ExpectSameIndices(Nms(boxes, scores, 0.5), keep);
  ExpectSameIndices(BatchedNms(boxes, scores, F("nms.idxs"), 0.5), batched_keep);
  at::Tensor grad_input = input.clone().requires_grad_(true);
  const at::Tensor out = RoiAlign(grad_input, rois.to(at::kBFloat16), 0.25, 5, 4, 2, false);
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  // The rois in bfloat16 are rounded before pooling; in float32 they are not: compare with
  // the rounded ones, pooled in float32.
  const at::Tensor expected =
      RoiAlignForward(input.to(at::kFloat), rois.to(at::kBFloat16).to(at::kFloat), 0.25, 5, 4, 2, false);
  EXPECT_TRUE(at::equal(out, expected.to(at::kBFloat16)));
  // bfloat16 output: rounded to 8 significant bits.
  EXPECT_TRUE(at::allclose(RoiAlign(input, rois, 0.25, 5, 4, 2, false).to(at::kFloat), pooled, 1e-2, 1e-3));
  out.to(at::kFloat).sum().backward();
  ASSERT_TRUE(grad_input.grad().defined());
  EXPECT_EQ(grad_input.grad().scalar_type(), at::kBFloat16);
}

// Box IoU promotes mixed dtypes and computes half precision in float32, as torchvision's does.
TEST_F(OpsTest, BoxIouPromotesToFloat32AtLeast) {
  const at::Tensor a = F("iou.a"), b = F("iou.b").to(at::kBFloat16);
  const at::Tensor iou = BoxIou(a, b);
  EXPECT_EQ(iou.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(iou, BoxIou(a, b.to(at::kFloat)), 0, 0));
  EXPECT_EQ(BoxIou(b, b).scalar_type(), at::kFloat);
  EXPECT_EQ(BoxIou(a.to(at::kDouble), b).scalar_type(), at::kDouble);
}

// A RoI with a NaN or infinite coordinate pools zeros and takes no gradient, on every sampling
// mode, without reading outside the feature map (the ASan pass checks); the other RoIs of the
// call are untouched.
TEST(OpsInputTest, RoiAlignPoolsZerosForNonFiniteBoxes) {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  const at::Tensor bad = at::tensor({0.0, nan, 1.0, 4.0, 4.0, 0.0, 1.0, nan, 4.0, 4.0, 0.0, -inf, 1.0, 4.0, 4.0,
                                     0.0, 1.0, 1.0, inf, 4.0, 0.0, 1.0, 1.0, 4.0, inf, 0.0, nan,  nan, nan, nan})
                             .view({6, 5})
                             .to(at::kFloat);
  const at::Tensor good = at::tensor({0.0, 1.0, 1.0, 6.0, 5.0}).view({1, 5}).to(at::kFloat);
  const at::Tensor rois = at::cat({bad, good});
  for (int aligned = 0; aligned <= 1; ++aligned) {
    for (int ratio : {0, 2}) {
      SCOPED_TRACE(::testing::PrintToString(std::make_pair(aligned, ratio)));
      const at::Tensor input = at::rand({1, 3, 8, 8}).requires_grad_(true);
      const at::Tensor out = RoiAlign(input, rois, 1.0, 3, 3, ratio, aligned);
      EXPECT_TRUE(at::equal(out.slice(0, 0, 6), at::zeros({6, 3, 3, 3})));
      const at::Tensor alone = RoiAlign(input, good, 1.0, 3, 3, ratio, aligned);
      EXPECT_TRUE(at::equal(out.slice(0, 6), alone));
      EXPECT_GT(alone.abs().sum().item<double>(), 0);
      const at::Tensor grad = torch::autograd::grad({out.sum()}, {input})[0];
      const at::Tensor grad_alone = torch::autograd::grad({alone.sum()}, {input})[0];
      EXPECT_TRUE(at::isfinite(grad).all().item<bool>());
      EXPECT_TRUE(at::allclose(grad, grad_alone, 0, 0));
    }
  }
}

TEST(OpsInputTest, EmptyInputsGiveEmptyOutputs) {
  EXPECT_EQ(Nms(at::zeros({0, 4}), at::zeros({0}), 0.5).numel(), 0);
  EXPECT_EQ(BatchedNms(at::zeros({0, 4}), at::zeros({0}), at::zeros({0}, at::kLong), 0.5).numel(), 0);
  EXPECT_EQ(RoiAlign(at::rand({1, 2, 4, 4}), at::zeros({0, 5}), 1, 2, 2, 2, false).sizes(),
            (std::vector<int64_t>{0, 2, 2, 2}));
  EXPECT_EQ(BoxIou(at::zeros({0, 4}), at::rand({3, 4})).sizes(), (std::vector<int64_t>{0, 3}));
}

}  // namespace
}  // namespace spnas::ops
