// The FasterRCNN on a GPU against itself on the CPU (the CPU side is checked against torchvision
// by detector_test), and the device checks of a run. Skipped, visibly, where there is no GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "spnas/device/device.h"
#include "spnas/models/detection/faster_rcnn.h"
#include "spnas/models/state_dict.h"
#include "tests/fixture.h"
#include "tests/tiny_detector.h"

namespace spnas {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

class DetectorCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_CUDA();
    const auto fixture = testing::LoadFixture("tests/fixtures/detector.pt");
    StateDict state;
    for (const auto& [key, value] : fixture) {
      if (key.rfind("model.", 0) == 0) state[key.substr(6)] = value;
    }
    for (auto* model : {&cpu_, &gpu_}) {
      *model = std::make_shared<FasterRCNN>(testing::FixtureDetectorOptions());
      ASSERT_TRUE(LoadStateDict(**model, state).missing.empty());
    }
    gpu_->to(c10::Device(c10::kCUDA, 0));
    images_ = {fixture.at("image0"), fixture.at("image1")};
    targets_ = {{fixture.at("target0.boxes"), fixture.at("target0.labels")},
                {fixture.at("target1.boxes"), fixture.at("target1.labels")}};
  }

  static std::vector<at::Tensor> Cuda(const std::vector<at::Tensor>& images) {
    std::vector<at::Tensor> out;
    for (const auto& image : images) out.push_back(image.cuda());
    return out;
  }

  std::shared_ptr<FasterRCNN> cpu_, gpu_;
  std::vector<at::Tensor> images_;
  std::vector<Target> targets_;
};

TEST_F(DetectorCudaTest, EvalDetectionsMatchTheCpu) {
  cpu_->eval();
  gpu_->eval();
  at::NoGradGuard no_grad;
  const DetectorOutput a = cpu_->Forward(images_);
  const DetectorOutput b = gpu_->Forward(Cuda(images_));
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    const Detections d = b.detections[i].To(c10::kCPU);
    EXPECT_TRUE(b.detections[i].boxes.is_cuda());
    // cuDNN's convolutions round differently: compare the confident detections only.
    const at::Tensor keep_a = a.detections[i].scores > 0.2, keep_b = d.scores > 0.2;
    ASSERT_EQ(keep_a.sum().item<int64_t>(), keep_b.sum().item<int64_t>()) << "image " << i;
    EXPECT_LT((a.detections[i].boxes.index({keep_a}) - d.boxes.index({keep_b})).abs().max().item<double>(), 1e-2);
    EXPECT_TRUE(a.detections[i].labels.index({keep_a}).equal(d.labels.index({keep_b})));
  }
}

TEST_F(DetectorCudaTest, TrainLossesMatchTheCpuAndBackwardRuns) {
  cpu_->train();
  gpu_->train();
  std::vector<Target> gpu_targets;
  for (const Target& t : targets_) gpu_targets.push_back(t.To(c10::Device(c10::kCUDA, 0)));
  const DetectorOutput a = cpu_->Forward(images_, &targets_);
  const DetectorOutput b = gpu_->Forward(Cuda(images_), &gpu_targets);
  at::Tensor total = at::zeros({}, at::kCUDA);
  for (const auto& [name, loss] : b.losses) {
    ASSERT_TRUE(loss.is_cuda()) << name;
    EXPECT_TRUE(std::isfinite(loss.item<double>())) << name;
    total = total + loss;
  }
  // The samplers draw from different generators on the two devices: the RPN objectness loss
  // over the same anchors still agrees in size.
  EXPECT_NEAR(a.losses.at("loss_objectness").item<double>(), b.losses.at("loss_objectness").item<double>(), 0.2);
  total.backward();
  int64_t with_grad = 0;
  for (const auto& p : gpu_->parameters()) with_grad += p.grad().defined() && p.grad().is_cuda();
  EXPECT_GT(with_grad, 0);
}

TEST(DeviceTest, ResolvesWhatExistsAndNamesTheCount) {
  EXPECT_TRUE(ResolveDevice("cpu").ok());
  EXPECT_FALSE(ResolveDevice("gpu").ok());
  EXPECT_FALSE(ResolveDevice("cpu:0").ok());
  EXPECT_FALSE(ResolveDevice("cuda:99999999999").ok());
  const int count = static_cast<int>(torch::cuda::device_count());
  const auto missing = ResolveDevice("cuda:" + std::to_string(count));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(count == 0 ? "no CUDA device" : std::to_string(count) + " CUDA device"),
            std::string::npos)
      << missing.status().message();
  if (count > 0) {
    const auto first = ResolveDevice("cuda");
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->index(), 0);
  }
}

}  // namespace
}  // namespace spnas
