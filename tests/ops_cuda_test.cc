// The CUDA kernels of RoIAlign and NMS against the CPU ones on the same inputs (the CPU side is
// checked against torchvision by ops_test). Skipped, visibly, where there is no GPU.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <functional>
#include <string>
#include <vector>

#include "spnas/ops/nms/nms.h"
#include "spnas/ops/roi_align/roi_align.h"
#include "tests/fixture.h"

namespace spnas::ops {
namespace {

using spnas::testing::ErrorOf;

using ::testing::AllOf;
using ::testing::HasSubstr;

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

constexpr double kScale = 0.25;
constexpr int64_t kPooledH = 5, kPooledW = 4;
constexpr int64_t kBatch = 2, kChannels = 6, kHeight = 13, kWidth = 17;

double MaxDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.cpu().to(at::kDouble) - b.cpu().to(at::kDouble)).abs().max().item<double>();
}

// Same device, dtype and shape as expected, and values within rtol * |expected| + atol.
void ExpectClose(const at::Tensor& got, const at::Tensor& expected, c10::ScalarType dtype, double rtol, double atol,
                 const std::string& what) {
  ASSERT_TRUE(got.is_cuda()) << what;
  ASSERT_EQ(got.scalar_type(), dtype) << what;
  ASSERT_EQ(got.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(at::allclose(got.cpu().to(expected.scalar_type()), expected, rtol, atol))
      << what << ": max difference " << MaxDiff(got, expected);
}

// Feature maps [2, 6, 13, 17] (an image of 68 x 52 at scale 1/4) and RoIs of every kind: random
// ones, inside and across the border, and fixed ones covering the map, outside it, within the
// one-pixel band around it, smaller than a pixel, of negative size (which `aligned` keeps).
at::Tensor Input() {
  at::manual_seed(7);
  return at::randn({kBatch, kChannels, kHeight, kWidth});
}

at::Tensor Rois() {
  at::manual_seed(11);
  const int64_t k = 40;
  const at::Tensor batch = at::randint(0, kBatch, {k, 1}).to(at::kFloat);
  const at::Tensor x1 = at::rand({k, 1}) * 80 - 8, y1 = at::rand({k, 1}) * 64 - 8;
  const at::Tensor w = at::rand({k, 1}) * 40, h = at::rand({k, 1}) * 30;
  const at::Tensor random = at::cat({batch, x1, y1, x1 + w, y1 + h}, 1);
  const at::Tensor fixed = at::tensor({0.f, 0.f,  0.f,  68.f,  52.f,   //
                                       1.f, 70.f, 60.f, 90.f,  80.f,   //
                                       0.f, -7.f, -6.f, -3.f,  -2.f,   //
                                       1.f, 10.f, 10.f, 10.5f, 10.3f,  //
                                       0.f, 30.f, 20.f, 10.f,  5.f,    //
                                       1.f, 60.f, 40.f, 75.f,  60.f})
                               .view({-1, 5});
  return at::cat({random, fixed}, 0);
}

TEST(OpsCudaTest, RoiAlignForwardAndBackwardMatchTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    const double tol = dtype == at::kFloat ? 1e-5 : 1e-12;
    const at::Tensor input = Input().to(dtype), rois = Rois().to(dtype);
    for (const bool aligned : {false, true}) {
      for (const int64_t ratio : {-1, 0, 2}) {
        const std::string what = std::string(c10::toString(dtype)) + (aligned ? " aligned" : " legacy") +
                                 ", sampling ratio " + std::to_string(ratio);
        const at::Tensor expected = RoiAlignForward(input, rois, kScale, kPooledH, kPooledW, ratio, aligned);
        ExpectClose(RoiAlignForward(input.cuda(), rois.cuda(), kScale, kPooledH, kPooledW, ratio, aligned), expected,
                    dtype, tol, tol, "forward, " + what);
        // A channels-last map is made contiguous first.
        ExpectClose(RoiAlignForward(input.cuda().contiguous(at::MemoryFormat::ChannelsLast), rois.cuda(), kScale,
                                    kPooledH, kPooledW, ratio, aligned),
                    expected, dtype, tol, tol, "channels-last forward, " + what);
        const at::Tensor grad = at::randn_like(expected);
        ExpectClose(RoiAlignBackward(grad.cuda(), rois.cuda(), kScale, kPooledH, kPooledW, kBatch, kChannels, kHeight,
                                     kWidth, ratio, aligned),
                    RoiAlignBackward(grad, rois, kScale, kPooledH, kPooledW, kBatch, kChannels, kHeight, kWidth, ratio,
                                     aligned),
                    dtype, tol, tol, "backward, " + what);
      }
    }
  }
}

TEST(OpsCudaTest, RoiAlignInputGradientMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  const at::Tensor input = Input(), rois = Rois();
  const at::Tensor weight = at::randn({rois.size(0), kChannels, kPooledH, kPooledW});
  for (const bool aligned : {false, true}) {
    // With the plain sum, autograd hands the backward an expanded (stride 0) gradient.
    for (const bool weighted : {false, true}) {
      std::vector<at::Tensor> grads;
      for (const auto device : {at::Device(at::kCPU), at::Device(at::kCUDA)}) {
        const at::Tensor x = input.to(device).clone().requires_grad_();  // a fresh leaf per run
        const at::Tensor out = RoiAlign(x, rois.to(device), kScale, kPooledH, kPooledW, 2, aligned);
        (weighted ? (out * weight.to(device)).sum() : out.sum()).backward();
        grads.push_back(x.grad());
      }
      ExpectClose(grads[1], grads[0], at::kFloat, 1e-5, 1e-5,
                  std::string(aligned ? "aligned" : "legacy") + (weighted ? ", weighted sum" : ", sum"));
    }
  }
}

// Half and bfloat16 against the float CPU kernel on the same (rounded) values: the positions
// sampled are the same, only the rounding of the results differs.
TEST(OpsCudaTest, RoiAlignHalfAndBFloat16MatchTheFloatCpu) {
  SKIP_WITHOUT_CUDA();
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    const double tol = dtype == at::kHalf ? 1e-3 : 1e-2;
    const at::Tensor input = Input().to(dtype), rois = Rois().to(dtype);
    const at::Tensor grad = at::randn({rois.size(0), kChannels, kPooledH, kPooledW}).to(dtype);
    for (const bool aligned : {false, true}) {
      for (const int64_t ratio : {-1, 0, 2}) {
        const std::string what = std::string(c10::toString(dtype)) + (aligned ? " aligned" : " legacy") +
                                 ", sampling ratio " + std::to_string(ratio);
        ExpectClose(
            RoiAlignForward(input.cuda(), rois.cuda(), kScale, kPooledH, kPooledW, ratio, aligned),
            RoiAlignForward(input.to(at::kFloat), rois.to(at::kFloat), kScale, kPooledH, kPooledW, ratio, aligned),
            dtype, tol, tol, "forward, " + what);
        ExpectClose(RoiAlignBackward(grad.cuda(), rois.cuda(), kScale, kPooledH, kPooledW, kBatch, kChannels, kHeight,
                                     kWidth, ratio, aligned),
                    RoiAlignBackward(grad.to(at::kFloat), rois.to(at::kFloat), kScale, kPooledH, kPooledW, kBatch,
                                     kChannels, kHeight, kWidth, ratio, aligned),
                    dtype, tol, tol, "backward, " + what);
      }
    }
  }
}

// [n, 4] boxes with corners in [0, extent) and sides below max_side, optionally whole numbers
// (then many IoUs are exactly 0.5 or 1/3, which tests the strict comparison).
at::Tensor Boxes(int64_t n, double extent, double max_side, bool whole) {
  at::Tensor xy = at::rand({n, 2}) * extent, wh = at::rand({n, 2}) * max_side;
  if (whole) {
    xy = xy.floor();
    wh = wh.floor();
  }
  return at::cat({xy, xy + wh}, 1);
}

void ExpectSameKeep(const at::Tensor& got, const at::Tensor& expected, const std::string& what) {
  ASSERT_TRUE(got.is_cuda()) << what;
  ASSERT_EQ(got.scalar_type(), at::kLong) << what;
  ASSERT_EQ(got.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(at::equal(got.cpu(), expected)) << what;
}

TEST(OpsCudaTest, NmsKeepsWhatTheCpuKeeps) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(3);
  // Within one 64-box word and across many.
  for (const int64_t n : {1, 2, 63, 64, 65, 700, 3000}) {
    for (const bool whole : {false, true}) {
      for (const bool ties : {false, true}) {
        const at::Tensor boxes = Boxes(n, 100, 30, whole);
        // Tied scores: the stable sort keeps them in input order on both devices.
        const at::Tensor scores = ties ? (at::rand({n}) * 8).floor() : at::rand({n});
        for (const auto dtype : {at::kFloat, at::kDouble}) {
          for (const double threshold : {0.3, 0.5, 0.7}) {
            const std::string what = "n " + std::to_string(n) + (whole ? ", whole" : "") + (ties ? ", ties" : "") +
                                     ", " + c10::toString(dtype) + ", threshold " + std::to_string(threshold);
            const at::Tensor b = boxes.to(dtype), s = scores.to(dtype);
            ExpectSameKeep(Nms(b.cuda(), s.cuda(), threshold), Nms(b, s, threshold), what);
          }
        }
      }
    }
  }
  // More mask words than the reduction has threads.
  const at::Tensor boxes = Boxes(20000, 2000, 30, /*whole=*/false), scores = at::rand({20000});
  ExpectSameKeep(Nms(boxes.cuda(), scores.cuda(), 0.5), Nms(boxes, scores, 0.5), "n 20000");
}

// Half and bfloat16 boxes with whole coordinates below 64 (exact in both) against the float CPU
// kernel on the same values.
TEST(OpsCudaTest, NmsOfHalfBoxesKeepsWhatTheFloatCpuKeeps) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(5);
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    for (const int64_t n : {50, 500, 2000}) {
      const at::Tensor boxes = Boxes(n, 48, 16, /*whole=*/true).to(dtype);
      const at::Tensor scores = at::rand({n}).to(dtype);  // bfloat16 rounds many to ties
      for (const double threshold : {0.3, 0.5}) {
        ExpectSameKeep(Nms(boxes.cuda(), scores.cuda(), threshold),
                       Nms(boxes.to(at::kFloat), scores.to(at::kFloat), threshold),
                       std::string(c10::toString(dtype)) + ", n " + std::to_string(n));
      }
    }
  }
}

TEST(OpsCudaTest, BatchedNmsKeepsWhatTheCpuKeepsInBothStrategies) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(9);
  // 300 boxes: the coordinate offset trick; 1500 (over 4000 coordinates): one NMS per class.
  for (const int64_t n : {300, 1500}) {
    // Distinct scores: the final ordering of the per-class strategy is not a stable sort.
    const at::Tensor scores = (at::randperm(n) + 1).to(at::kFloat) / 2048;  // exact in half
    const at::Tensor idxs = at::randint(0, 4, {n});
    const at::Tensor boxes = Boxes(n, 48, 16, /*whole=*/true);  // offsets stay exact in half
    const std::string what = "n " + std::to_string(n);
    ExpectSameKeep(BatchedNms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5), BatchedNms(boxes, scores, idxs, 0.5),
                   "float, " + what);
    const at::Tensor real = Boxes(n, 100, 30, /*whole=*/false);
    ExpectSameKeep(BatchedNms(real.cuda(), scores.cuda(), idxs.cuda(), 0.5), BatchedNms(real, scores, idxs, 0.5),
                   "float, fractional, " + what);
    const at::Tensor half_boxes = boxes.to(at::kHalf), half_scores = scores.to(at::kHalf);
    ExpectSameKeep(BatchedNms(half_boxes.cuda(), half_scores.cuda(), idxs.cuda(), 0.5),
                   BatchedNms(half_boxes.to(at::kFloat), half_scores.to(at::kFloat), idxs, 0.5), "half, " + what);
  }
}

TEST(OpsCudaTest, MixedDevicesGiveClearErrors) {
  SKIP_WITHOUT_CUDA();
  const at::Tensor input = Input().cuda(), rois = Rois();
  const auto names_both = AllOf(HasSubstr("same device"), HasSubstr("cuda:0"), HasSubstr("cpu"));
  EXPECT_THAT(ErrorOf([&] { RoiAlignForward(input, rois, kScale, kPooledH, kPooledW, 2, false); }), names_both);
  EXPECT_THAT(ErrorOf([&] { RoiAlign(input, rois, kScale, kPooledH, kPooledW, 2, false); }), names_both);
  EXPECT_THAT(ErrorOf([&] {
                RoiAlignBackward(at::zeros({rois.size(0), kChannels, kPooledH, kPooledW}, at::kCUDA), rois, kScale,
                                 kPooledH, kPooledW, kBatch, kChannels, kHeight, kWidth, 2, false);
              }),
              names_both);
  const at::Tensor boxes = Boxes(10, 100, 30, false);
  EXPECT_THAT(ErrorOf([&] { Nms(boxes.cuda(), at::rand({10}), 0.5); }), names_both);
  EXPECT_THAT(ErrorOf([&] { BatchedNms(boxes.cuda(), at::rand({10}, at::kCUDA), at::zeros({10}, at::kLong), 0.5); }),
              AllOf(HasSubstr("idxs"), HasSubstr("cuda:0"), HasSubstr("cpu")));
}

TEST(OpsCudaTest, EmptyInputsGiveEmptyOutputsOnTheDevice) {
  SKIP_WITHOUT_CUDA();
  const at::Tensor none = Nms(at::zeros({0, 4}, at::kCUDA), at::zeros({0}, at::kCUDA), 0.5);
  EXPECT_TRUE(none.is_cuda());
  EXPECT_EQ(none.numel(), 0);
  EXPECT_EQ(BatchedNms(at::zeros({0, 4}, at::kCUDA), at::zeros({0}, at::kCUDA), at::zeros({0}, at::kLong).cuda(), 0.5)
                .numel(),
            0);
  const at::Tensor input = Input().cuda();
  const at::Tensor out = RoiAlignForward(input, at::zeros({0, 5}, at::kCUDA), kScale, kPooledH, kPooledW, 2, false);
  EXPECT_TRUE(out.is_cuda());
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{0, kChannels, kPooledH, kPooledW}));
  const at::Tensor grad =
      RoiAlignBackward(at::zeros({0, kChannels, kPooledH, kPooledW}, at::kCUDA), at::zeros({0, 5}, at::kCUDA), kScale,
                       kPooledH, kPooledW, kBatch, kChannels, kHeight, kWidth, 2, false);
  EXPECT_TRUE(grad.is_cuda());
  EXPECT_EQ(grad.sizes(), (std::vector<int64_t>{kBatch, kChannels, kHeight, kWidth}));
  EXPECT_EQ(grad.abs().sum().item<double>(), 0);
  // A map without pixels: every sample lies outside, so all zeros.
  const at::Tensor flat = RoiAlignForward(at::zeros({1, 3, 0, 5}, at::kCUDA), Rois().cuda().narrow(0, 0, 2), kScale,
                                          kPooledH, kPooledW, 2, false);
  EXPECT_EQ(flat.sizes(), (std::vector<int64_t>{2, 3, kPooledH, kPooledW}));
  EXPECT_EQ(flat.abs().sum().item<double>(), 0);
}

}  // namespace
}  // namespace spnas::ops
