// The CUDA kernels of RoIAlign and NMS against the CPU ones on the same inputs (the CPU side is
// checked against torchvision by ops_test), and against torchvision's kept indices past its
// per-device strategy limits; inputs large enough for the kernels' 64-bit index paths. Skipped,
// visibly, where there is no GPU; failed there when SPNAS_REQUIRE_CUDA=1 (tests/cuda_required.h).
#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime_api.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "spnas/ops/nms/nms.h"
#include "spnas/ops/roi_align/roi_align.h"
#include "tests/cuda_required.h"
#include "tests/fixture.h"

namespace spnas::ops {
namespace {

using spnas::testing::ErrorOf;

using ::testing::AllOf;
using ::testing::HasSubstr;

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

// Past torchvision's per-device strategy limits (tests/make_nms_large_fixture.py): on CUDA,
// 10,000 boxes are offset apart and 30,000 (over 100,000 coordinates) get one NMS per category.
// Torchvision's kept indices, exactly, on both devices.
TEST(OpsCudaTest, BatchedNmsKeepsWhatTorchvisionKeepsPastItsStrategyLimits) {
  SKIP_WITHOUT_CUDA();
  const auto fixture = testing::LoadFixture("tests/fixtures/nms_large.pt");
  for (const std::string name : {"mid", "large"}) {
    const at::Tensor boxes = fixture.at(name + ".boxes"), scores = fixture.at(name + ".scores");
    const at::Tensor idxs = fixture.at(name + ".idxs"), expected = fixture.at(name + ".keep");
    ExpectSameKeep(BatchedNms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5), expected,
                   name + " (" + std::to_string(boxes.numel()) + " coordinates), cuda");
    EXPECT_TRUE(at::equal(BatchedNms(boxes, scores, idxs, 0.5), expected)) << name << ", cpu";
  }
}

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// GiB free on the GPU, the allocator's cache handed back first.
double FreeGib() {
  c10::cuda::CUDACachingAllocator::emptyCache();
  size_t free = 0, total = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return static_cast<double>(free) / (1 << 30);
}

// The tests of the 64-bit index paths need tensors of over 2^31 elements (8 GiB in float32).
#define SKIP_WITHOUT_GIB(gib) \
  if (FreeGib() < (gib)) GTEST_SKIP() << "needs " << (gib) << " GiB free on the GPU, has " << FreeGib()

// A feature map of more than 2^31 elements, [2, 2200, 720, 720] (9.1 GB): the kernels switch to
// 64-bit offsets, and image 1's planes from channel 1943 on start past 2^31. Against image 1
// alone as a map of its own (1.1e9 elements, the 32-bit path).
TEST(OpsCudaTest, RoiAlignOnAMapOfMoreThanInt32MaxElements) {
  SKIP_WITHOUT_CUDA();
  SKIP_WITHOUT_GIB(40);
  const int64_t channels = 2200, size = 720, k = 16;
  at::manual_seed(13);
  at::Tensor input = at::rand({2, channels, size, size}, at::kCUDA);
  ASSERT_GT(input.numel(), kInt32Max);
  // Across the map, one at its far corner and one past its border.
  const at::Tensor xy = at::rand({k - 2, 2}) * (size - 30), wh = at::rand({k - 2, 2}) * 25 + 1;
  const at::Tensor boxes = at::cat({at::cat({xy, xy + wh}, 1),
                                    at::tensor({700.f, 690.f, 720.f, 720.f, 710.f, 712.f, 730.f, 726.f}).view({2, 4})})
                               .cuda();
  const at::Tensor on_image1 = at::cat({at::ones({k, 1}, at::kCUDA), boxes}, 1);
  const at::Tensor on_image0 = at::cat({at::zeros({k, 1}, at::kCUDA), boxes}, 1);
  const at::Tensor image1 = input.narrow(0, 1, 1);
  ASSERT_LE(image1.numel(), kInt32Max);
  const at::Tensor out = RoiAlignForward(input, on_image1, 1.0, 7, 7, 2, true);
  // The same arithmetic in both paths, only the index type differs: equal to the bit.
  const at::Tensor expected = RoiAlignForward(image1, on_image0, 1.0, 7, 7, 2, true);
  EXPECT_TRUE(at::equal(out, expected)) << "forward: max difference " << MaxDiff(out, expected);
  EXPECT_GT(out.abs().sum().item<double>(), 0);
  input = at::Tensor();  // room for the gradients
  const at::Tensor grad = at::rand_like(out);
  const at::Tensor got = RoiAlignBackward(grad, on_image1, 1.0, 7, 7, 2, channels, size, size, 2, true);
  const at::Tensor want = RoiAlignBackward(grad, on_image0, 1.0, 7, 7, 1, channels, size, size, 2, true);
  // Overlapping RoIs add to the same pixels with atomics, in any order: float32 rounding.
  EXPECT_TRUE(at::allclose(got[1], want[0], 1e-5, 1e-6)) << "backward: max difference " << MaxDiff(got[1], want[0]);
  EXPECT_FALSE(got[0].any().item<bool>()) << "backward: gradient on image 0, which no RoI reads";
}

// 685,000 RoIs x 64 channels x 7 x 7: an output of 2.148e9 elements (8.6 GB), the last RoIs'
// past 2^31. Against the first and last RoIs on their own (the 32-bit path).
TEST(OpsCudaTest, RoiAlignWithAnOutputOfMoreThanInt32MaxElements) {
  SKIP_WITHOUT_CUDA();
  SKIP_WITHOUT_GIB(24);
  const int64_t k = 685000, channels = 64, size = 64, part = 5000;
  at::manual_seed(17);
  const at::Tensor input = at::rand({2, channels, size, size}, at::kCUDA);
  const at::Tensor xy = at::rand({k, 2}, at::kCUDA) * (size - 8), wh = at::rand({k, 2}, at::kCUDA) * 16 + 1;
  const at::Tensor rois = at::cat({at::randint(0, 2, {k, 1}, at::kCUDA).to(at::kFloat), xy, xy + wh}, 1);
  const at::Tensor out = RoiAlignForward(input, rois, 1.0, 7, 7, 1, true);
  ASSERT_GT(out.numel(), kInt32Max);
  for (const int64_t start : {int64_t{0}, k - part}) {
    const at::Tensor expected = RoiAlignForward(input, rois.narrow(0, start, part), 1.0, 7, 7, 1, true);
    EXPECT_TRUE(at::equal(out.narrow(0, start, part), expected))
        << "forward of RoIs from " << start << ": max difference " << MaxDiff(out.narrow(0, start, part), expected);
  }
  // A gradient for the last RoIs only (the kernel skips zeros, so the other threads are cheap).
  at::Tensor grad = at::zeros_like(out);
  grad.narrow(0, k - part, part).uniform_();
  const at::Tensor got = RoiAlignBackward(grad, rois, 1.0, 7, 7, 2, channels, size, size, 1, true);
  const at::Tensor want = RoiAlignBackward(grad.narrow(0, k - part, part), rois.narrow(0, k - part, part), 1.0, 7, 7, 2,
                                           channels, size, size, 1, true);
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-6)) << "backward: max difference " << MaxDiff(got, want);
}

// 400,000 boxes: 6,250 mask words a row, more than the reduction keeps in shared memory (6,080),
// so it keeps its "suppressed" bits in global memory; the mask alone is 20 GB. Gathered around
// 300 centres, so that few boxes are kept and the CPU's kernel (kept x n steps) is quick.
TEST(OpsCudaTest, NmsOfMoreBoxesThanTheSharedMemoryReductionHolds) {
  SKIP_WITHOUT_CUDA();
  SKIP_WITHOUT_GIB(24);
  const int64_t n = 400000;
  at::manual_seed(19);
  const at::Tensor centres = (at::rand({300, 2}) * 4000).floor();
  const at::Tensor xy = centres.index_select(0, at::randint(0, 300, {n})) + at::randint(-6, 7, {n, 2}).to(at::kFloat);
  const at::Tensor boxes = at::cat({xy, xy + at::randint(60, 80, {n, 2}).to(at::kFloat)}, 1);
  const at::Tensor scores = at::rand({n});
  ExpectSameKeep(Nms(boxes.cuda(), scores.cuda(), 0.5), Nms(boxes, scores, 0.5), "n 400000");
}

}  // namespace
}  // namespace spnas::ops
