// The FasterRCNN on a GPU against itself on the CPU (the CPU side is checked against torchvision
// by detector_test): detections, training losses and gradients, mixed-precision training, the
// host syncs of a training iteration, and the device checks of a run. Skipped, visibly, where
// there is no GPU; failed there when SPNAS_REQUIRE_CUDA=1 (tests/cuda_required.h).
#include <ATen/Context.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "spnas/device/device.h"
#include "spnas/models/detection/faster_rcnn.h"
#include "spnas/models/state_dict.h"
#include "spnas/trainers/mixed_precision.h"
#include "tests/cuda_required.h"
#include "tests/fixture.h"
#include "tests/tiny_detector.h"

namespace spnas {
namespace {

const c10::Device kCuda(c10::kCUDA, 0);

// The fixture's weights and training batch (tests/fixtures/detector.pt, made by torchvision).
struct FixtureBatch {
  StateDict state;
  std::vector<at::Tensor> images;
  std::vector<Target> targets;
};

const FixtureBatch& Fixture() {
  static const FixtureBatch batch = [] {
    const auto fixture = testing::LoadFixture("tests/fixtures/detector.pt");
    FixtureBatch b;
    for (const auto& [key, value] : fixture) {
      if (key.rfind("model.", 0) == 0) b.state[key.substr(6)] = value;
    }
    b.images = {fixture.at("image0"), fixture.at("image1")};
    b.targets = {{fixture.at("target0.boxes"), fixture.at("target0.labels")},
                 {fixture.at("target1.boxes"), fixture.at("target1.labels")}};
    return b;
  }();
  return batch;
}

// The fixture detector with the fixture's weights, on `device`, its floating-point parameters
// and buffers in `dtype` (BatchNorm's batch counter stays an integer).
std::shared_ptr<FasterRCNN> MakeDetector(const FasterRCNNOptions& options, const c10::Device& device,
                                         c10::ScalarType dtype = at::kFloat) {
  auto model = std::make_shared<FasterRCNN>(options);
  EXPECT_TRUE(LoadStateDict(*model, Fixture().state).missing.empty());
  model->to(device);
  at::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.set_data(p.to(dtype));
  for (auto& b : model->buffers()) {
    if (b.is_floating_point()) b.set_data(b.to(dtype));
  }
  return model;
}

std::vector<at::Tensor> Images(const c10::Device& device, c10::ScalarType dtype = at::kFloat) {
  std::vector<at::Tensor> out;
  for (const auto& image : Fixture().images) out.push_back(image.to(device, dtype));
  return out;
}

std::vector<Target> Targets(const c10::Device& device, c10::ScalarType dtype = at::kFloat) {
  std::vector<Target> out;
  for (const Target& t : Fixture().targets) out.push_back({t.boxes.to(device, dtype), t.labels.to(device)});
  return out;
}

// The fixture detector sampling every anchor and proposal its matchers label (batch sizes far
// above their counts): the devices draw their samples from different generators, and with
// everything sampled the draws no longer matter.
FasterRCNNOptions SampleAll() {
  FasterRCNNOptions o = testing::FixtureDetectorOptions();
  o.set_rpn_batch_size_per_image(1 << 20);
  o.set_box_batch_size_per_image(1 << 20);
  return o;
}

// cuDNN's convolutions and cuBLAS's matrix products in full float32 (not TF32, whose 10-bit
// mantissa would dominate any comparison with the CPU) while alive.
class NoTf32 {
 public:
  NoTf32() : cudnn_(at::globalContext().allowTF32CuDNN()), cublas_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuDNN(cudnn_);
    at::globalContext().setAllowTF32CuBLAS(cublas_);
  }

 private:
  bool cudnn_, cublas_;
};

at::Tensor Sum(const std::map<std::string, at::Tensor>& losses) {
  at::Tensor total;
  for (const auto& [name, loss] : losses) total = total.defined() ? total + loss : loss;
  return total;
}

class DetectorCudaTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

TEST_F(DetectorCudaTest, EvalDetectionsMatchTheCpu) {
  const auto cpu = MakeDetector(testing::FixtureDetectorOptions(), c10::kCPU);
  const auto gpu = MakeDetector(testing::FixtureDetectorOptions(), kCuda);
  cpu->eval();
  gpu->eval();
  at::NoGradGuard no_grad;
  const DetectorOutput a = cpu->Forward(Images(c10::kCPU));
  const DetectorOutput b = gpu->Forward(Images(kCuda));
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    const Detections d = b.detections[i].To(c10::kCPU);
    EXPECT_TRUE(b.detections[i].boxes.is_cuda());
    // cuDNN's convolutions round differently (TF32, the default): compare the confident
    // detections only.
    const at::Tensor keep_a = a.detections[i].scores > 0.2, keep_b = d.scores > 0.2;
    ASSERT_EQ(keep_a.sum().item<int64_t>(), keep_b.sum().item<int64_t>()) << "image " << i;
    EXPECT_LT((a.detections[i].boxes.index({keep_a}) - d.boxes.index({keep_b})).abs().max().item<double>(), 1e-2);
    EXPECT_TRUE(a.detections[i].labels.index({keep_a}).equal(d.labels.index({keep_b})));
  }
}

// One training forward and backward of the fixture batch: each loss, and each parameter's
// gradient (on the CPU, in double).
struct Pass {
  std::map<std::string, double> losses;
  std::map<std::string, at::Tensor> grads;
};

Pass ForwardBackward(const c10::Device& device, c10::ScalarType dtype) {
  const auto model = MakeDetector(SampleAll(), device, dtype);
  model->train();
  const std::vector<Target> targets = Targets(device, dtype);
  const DetectorOutput out = model->Forward(Images(device, dtype), &targets);
  Pass pass;
  for (const auto& [name, loss] : out.losses) {
    EXPECT_EQ(loss.device(), device) << name;
    pass.losses[name] = loss.item<double>();
  }
  Sum(out.losses).backward();
  for (const auto& item : model->named_parameters()) {
    if (item.value().grad().defined()) pass.grads[item.key()] = item.value().grad().to(c10::kCPU, at::kDouble);
  }
  return pass;
}

// Each loss within loss_rtol of the CPU's (relative to max(|loss|, 1)), and each parameter's
// gradient within grad_rtol of the CPU's in L2 norm (relative to the norm of the CPU's gradient,
// at least 1e-3 of the largest one, so that a near-zero gradient is not held to its own scale).
void ExpectSamePass(const Pass& cpu, const Pass& gpu, double loss_rtol, double grad_rtol, const std::string& what) {
  ASSERT_EQ(cpu.losses.size(), gpu.losses.size()) << what;
  for (const auto& [name, expected] : cpu.losses) {
    const double got = gpu.losses.at(name);
    EXPECT_TRUE(std::isfinite(got)) << what << ": " << name;
    EXPECT_LE(std::abs(got - expected), loss_rtol * std::max(std::abs(expected), 1.0))
        << what << ": " << name << " cuda " << got << ", cpu " << expected;
  }
  ASSERT_EQ(cpu.grads.size(), gpu.grads.size()) << what << ": parameters with a gradient";
  double largest = 0;
  for (const auto& [name, g] : cpu.grads) largest = std::max(largest, g.norm().item<double>());
  ASSERT_GT(largest, 0) << what;
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, expected] : cpu.grads) {
    ASSERT_TRUE(gpu.grads.count(name)) << what << ": no gradient for " << name << " on CUDA";
    const double scale = std::max(expected.norm().item<double>(), 1e-3 * largest);
    const double error = (gpu.grads.at(name) - expected).norm().item<double>() / scale;
    if (error > worst) {
      worst = error;
      worst_name = name;
    }
    EXPECT_LE(error, grad_rtol) << what << ": gradient of " << name;
  }
  std::cout << what << ": largest relative gradient difference " << worst << " (" << worst_name << ")\n";
}

// Same weights, same batch: the losses and gradients on CUDA against the CPU's.
// - float64: the devices differ only in the order of their sums (cuDNN's algorithms, atomics in
//   RoIAlign's backward), ~1e-16 relative, which the network grows by about 1e5 (measured in
//   float32 below). 1e-10 on the losses and 1e-8 on the gradients leave a wide margin, and a
//   real kernel difference (a sample point, a box, a rounding) shows far above them.
// - float32, TF32 off: each device rounds its own way. On the CPU, float32 against float64
//   differs by up to 2e-6 in a loss and 7e-3 in a gradient (the first convolution's: long sums,
//   and BatchNorm's backward subtracting nearly equal terms); 1e-4 and 5e-2 allow for several
//   times that from the GPU's side (cuDNN's algorithms may round worse than the CPU's).
TEST_F(DetectorCudaTest, TrainLossesAndGradientsMatchTheCpu) {
  const NoTf32 no_tf32;
  ExpectSamePass(ForwardBackward(c10::kCPU, at::kDouble), ForwardBackward(kCuda, at::kDouble), 1e-10, 1e-8, "float64");
  ExpectSamePass(ForwardBackward(c10::kCPU, at::kFloat), ForwardBackward(kCuda, at::kFloat), 1e-4, 5e-2, "float32");
}

// The total loss of each of `steps` SGD steps on the fixture batch on CUDA, the forward pass
// under autocast to `dtype` (none for float32), float16 with loss scaling, as the trainer does.
std::vector<double> TrainLosses(c10::ScalarType dtype, int steps) {
  const auto model = MakeDetector(SampleAll(), kCuda);
  model->train();
  std::vector<at::Tensor> params = model->parameters();
  // Small plain steps: the fixture's classifier starts far off (its weights are scaled up), and
  // with larger or momentum steps even float32's losses jump from step to step.
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.002));
  // A modest loss scale: the trainer's 65536 may overflow float16 on the first steps and skip
  // them, and here every run must take the same steps (a skipped one fails the test).
  LossScaler scaler(dtype == at::kHalf, kCuda, /*initial_scale=*/1024);
  const std::vector<at::Tensor> images = Images(kCuda);
  const std::vector<Target> targets = Targets(kCuda);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    DetectorOutput out;
    {
      const AutocastScope autocast(c10::kCUDA, dtype);
      out = model->Forward(images, &targets);
    }
    for (const auto& [name, loss] : out.losses) {
      EXPECT_EQ(loss.scalar_type(), at::kFloat) << c10::toString(dtype) << ": " << name << " (autocast's float32 list)";
    }
    const at::Tensor total = Sum(out.losses);
    losses.push_back(total.item<double>());
    sgd.zero_grad();
    scaler.Scale(total).backward();
    if (scaler.Unscale(params)) {
      sgd.step();
    } else {
      ADD_FAILURE() << c10::toString(dtype) << ": step " << step << " skipped (gradients overflowed)";
    }
    scaler.Update();
  }
  return losses;
}

// Mixed precision trains like float32 on the same weights and batch: finite losses, close to
// float32's. float16 rounds to 11 significant bits, bfloat16 to 8 (~0.05% and ~0.4% per
// operation). With bfloat16 autocast on the CPU, the first step's loss (same weights: the
// forward's precision alone) is within 1% of float32's, and so is the mean of the last four
// steps of eight, while single steps between differ by up to 15% (a step that changes a few
// proposals is enough), so those are not compared one by one. Held to 5% and 10% (bfloat16),
// 2% and 5% (float16): a loss computed in half precision, a wrong unscaling or a diverging run
// falls far outside.
TEST_F(DetectorCudaTest, MixedPrecisionTrainingStaysCloseToFloat32) {
  const NoTf32 no_tf32;  // float32, the reference, in full precision
  constexpr int kSteps = 8;
  auto last_four = [](const std::vector<double>& losses) {
    return (losses[kSteps - 1] + losses[kSteps - 2] + losses[kSteps - 3] + losses[kSteps - 4]) / 4;
  };
  const std::vector<double> reference = TrainLosses(at::kFloat, kSteps);
  EXPECT_LT(last_four(reference), reference[0]) << "float32 training does not lower the loss";
  for (const auto& [dtype, first_rtol, last_rtol] :
       {std::tuple{at::kHalf, 0.02, 0.05}, std::tuple{at::kBFloat16, 0.05, 0.10}}) {
    const std::vector<double> losses = TrainLosses(dtype, kSteps);
    const std::string what = c10::toString(dtype);
    std::cout << "mixed precision " << what << ": losses";
    for (int step = 0; step < kSteps; ++step)
      std::cout << " " << losses[step] << " (float32 " << reference[step] << ")";
    std::cout << "\n";
    for (int step = 0; step < kSteps; ++step) ASSERT_TRUE(std::isfinite(losses[step])) << what << " step " << step;
    EXPECT_LE(std::abs(losses[0] - reference[0]), first_rtol * reference[0])
        << what << " first step: loss " << losses[0] << ", float32 " << reference[0];
    EXPECT_LE(std::abs(last_four(losses) - last_four(reference)), last_rtol * last_four(reference))
        << what << " last four steps: mean loss " << last_four(losses) << ", float32 " << last_four(reference);
  }
}

// Counts the warnings of CUDA's sync debug mode (one per host sync) while alive; other warnings
// go to the handler that was there before.
class SyncCounter : public c10::WarningHandler {
 public:
  SyncCounter() : previous_(c10::WarningUtils::get_warning_handler()) {
    c10::WarningUtils::set_warning_handler(this);
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  }
  ~SyncCounter() override {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    c10::WarningUtils::set_warning_handler(previous_);
  }
  void process(const c10::Warning& warning) override {
    if (warning.msg().find("synchronizing CUDA operation") != std::string::npos) {
      ++count_;
    } else {
      previous_->process(warning);
    }
  }
  int count() const { return count_; }

 private:
  c10::WarningHandler* previous_;
  int count_ = 0;
};

// The host syncs of one training iteration (forward, backward, SGD step) of the train_step case
// of benchmarks/spnas_benchmark.cc: ResNet-18 FPN, 91 classes, batch 8 of 128 px. Printed as
// "host_syncs spnas <precision> <count>" for tools/gpu_check_run.sh, which prints torchvision's
// count for the same case beside it (tools/gpu_sync_count.py); fewer is better, and the count is
// reported, not held to a bound here. Each iteration's count is that of the second: the first
// one makes the per-device caches (anchors, normalisation constants).
TEST_F(DetectorCudaTest, HostSyncsPerTrainingIteration) {
  {
    const SyncCounter counter;  // counts a known sync, and only that
    at::ones({1}, kCuda).item<float>();
    ASSERT_EQ(counter.count(), 1) << "the sync debug mode's warnings do not reach the counter";
  }
  for (const c10::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    torch::manual_seed(2);
    FasterRCNNOptions options;
    ResNetOptions resnet;
    resnet.set_depth(18);
    options.mutable_backbone()->set_type("ResNet");
    options.mutable_backbone()->mutable_options()->PackFrom(resnet);
    options.add_min_size(128);
    options.set_max_size(128);
    FasterRCNN model(options);
    model.to(kCuda);
    model.train();
    std::vector<at::Tensor> params = model.parameters();
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.01).momentum(0.9));
    LossScaler scaler(dtype == at::kHalf, kCuda);
    std::vector<at::Tensor> images;
    std::vector<Target> targets;
    for (int i = 0; i < 8; ++i) {
      images.push_back(at::rand({3, 128, 128}).to(kCuda));
      targets.push_back({at::tensor({10.f, 20.f, 60.f, 90.f, 50.f, 40.f, 120.f, 110.f}).view({2, 4}).to(kCuda),
                         at::tensor({3, 7}, at::kLong).to(kCuda)});
    }
    auto iteration = [&] {
      DetectorOutput out;
      {
        const AutocastScope autocast(c10::kCUDA, dtype);
        out = model.Forward(images, &targets);
      }
      sgd.zero_grad();
      scaler.Scale(Sum(out.losses)).backward();
      if (scaler.Unscale(params)) sgd.step();
      scaler.Update();
    };
    iteration();
    Synchronize(kCuda);
    int syncs = 0;
    {
      const SyncCounter counter;
      iteration();
      syncs = counter.count();
    }
    Synchronize(kCuda);
    const std::string name = dtype == at::kFloat ? "float32" : dtype == at::kHalf ? "float16" : "bfloat16";
    std::cout << "host_syncs spnas " << name << " " << syncs << "\n";
  }
}

TEST(DeviceTest, ResolvesWhatExistsAndNamesTheCount) {
  EXPECT_TRUE(ResolveDevice("cpu").ok());
  EXPECT_FALSE(ResolveDevice("gpu").ok());
  EXPECT_FALSE(ResolveDevice("cpu:0").ok());
  EXPECT_FALSE(ResolveDevice("cuda:99999999999").ok());
  const int count = static_cast<int>(torch::cuda::device_count());
  if (testing::CudaRequired()) {
    EXPECT_GT(count, 0) << "no CUDA device (SPNAS_REQUIRE_CUDA=1)";
  }
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
