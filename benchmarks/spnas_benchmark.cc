// Google benchmarks of the ops and the detector. benchmarks/compare_torchvision.sh runs the same
// cases in torchvision and prints ours / torchvision per case. Cases (shared with
// benchmarks/torchvision_cases.py):
//   roi_align_forward / roi_align_backward: features [8, 256, 50, 50], 2000 RoIs, 7x7, ratio 2
//   roi_align_autograd: the same, forward and backward through autograd
//   nms: 3000 boxes, IoU 0.5
//   train_step: Faster R-CNN ResNet-18 FPN, batch 8 of 128 px, forward + backward + SGD step
//   train_step_bf16 / train_step_fp16: the same under autocast (bfloat16 on the CPU or CUDA;
//     float16 on CUDA only, with loss scaling), as mixed_precision trains
//   inference: Faster R-CNN ResNet-50 FPN, one 800 px image, random weights
//   coco_eval: 5,000 images x 100 detections
// SPNAS_DEVICE (cpu, cuda, cuda:N) picks the device of the op and detector cases; each timed
// iteration waits for the device, as the torchvision side does.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <random>
#include <thread>

#include "spnas/data/fashion_det.h"
#include "spnas/device/device.h"
#include "spnas/metrics/coco_eval.h"
#include "spnas/models/detection/faster_rcnn.h"
#include "spnas/ops/nms/nms.h"
#include "spnas/ops/roi_align/roi_align.h"
#include "spnas/trainers/mixed_precision.h"

namespace spnas {
namespace {

void Threads() {
  static const bool set = [] {
    const char* env = std::getenv("SPNAS_THREADS");
    at::set_num_threads(env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency()));
    KeepCpuMemoryForReuse();  // as the spnas command does
    return true;
  }();
  (void)set;
}

c10::Device Dev() {
  static const c10::Device device = [] {
    const char* env = std::getenv("SPNAS_DEVICE");
    auto d = ResolveDevice(env ? env : "cpu");
    if (!d.ok()) throw std::runtime_error(d.status().message());
    return *d;
  }();
  return device;
}

void Sync() { Synchronize(Dev()); }

at::Tensor Rois(int64_t n, int64_t images, double size) {
  torch::manual_seed(0);
  at::Tensor xy = at::rand({n, 2}) * size;
  at::Tensor wh = at::rand({n, 2}) * size / 4 + 4;
  at::Tensor idx = at::randint(0, images, {n, 1}).to(at::kFloat);
  return at::cat({idx, xy, xy + wh}, 1).to(Dev());
}

void BM_RoiAlignForward(benchmark::State& state) {
  Threads();
  const at::Tensor x = at::rand({8, 256, 50, 50}).to(Dev());
  const at::Tensor rois = Rois(2000, 8, 400);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::RoiAlignForward(x, rois, 0.125, 7, 7, 2, false));
    Sync();
  }
}

void BM_RoiAlignBackward(benchmark::State& state) {
  Threads();
  const at::Tensor rois = Rois(2000, 8, 400);
  const at::Tensor grad = at::rand({2000, 256, 7, 7}).to(Dev());
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::RoiAlignBackward(grad, rois, 0.125, 7, 7, 8, 256, 50, 50, 2, false));
    Sync();
  }
}

// Forward and backward through autograd, as a training step runs RoIAlign.
void BM_RoiAlignAutograd(benchmark::State& state) {
  Threads();
  const at::Tensor x = at::rand({8, 256, 50, 50}).to(Dev()).requires_grad_(true);
  const at::Tensor rois = Rois(2000, 8, 400);
  const at::Tensor grad = at::rand({2000, 256, 7, 7}).to(Dev());
  for (auto _ : state) {
    x.mutable_grad() = at::Tensor();
    ops::RoiAlign(x, rois, 0.125, 7, 7, 2, false).backward(grad);
    Sync();
  }
}

void BM_Nms(benchmark::State& state) {
  Threads();
  torch::manual_seed(1);
  at::Tensor xy = at::rand({3000, 2}) * 500;
  const at::Tensor boxes = at::cat({xy, xy + at::rand({3000, 2}) * 100 + 1}, 1).to(Dev());
  const at::Tensor scores = at::rand({3000}).to(Dev());
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::Nms(boxes, scores, 0.5));
    Sync();
  }
}

FasterRCNNOptions Detector(int depth, int size) {
  FasterRCNNOptions o;
  ResNetOptions r;
  r.set_depth(depth);
  o.mutable_backbone()->set_type("ResNet");
  o.mutable_backbone()->mutable_options()->PackFrom(r);
  o.add_min_size(size);
  o.set_max_size(size);
  return o;
}

// precision: float32, or the autocast dtype of a mixed-precision step (bfloat16 on the CPU or
// CUDA, float16 on CUDA with loss scaling), as the trainer runs it.
void TrainStep(benchmark::State& state, c10::ScalarType precision) {
  Threads();
  if (precision == c10::kHalf && !Dev().is_cuda()) {
    state.SkipWithError("float16 autocast needs CUDA (SPNAS_DEVICE=cuda)");
    return;
  }
  torch::manual_seed(2);
  FasterRCNN model(Detector(18, 128));
  model.to(Dev());
  model.train();
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  std::vector<at::Tensor> images;
  std::vector<Target> targets;
  for (int i = 0; i < 8; ++i) {
    images.push_back(at::rand({3, 128, 128}).to(Dev()));
    targets.push_back({at::tensor({10.f, 20.f, 60.f, 90.f, 50.f, 40.f, 120.f, 110.f}).view({2, 4}).to(Dev()),
                       at::tensor({3, 7}, at::kLong).to(Dev())});
  }
  LossScaler scaler(precision == c10::kHalf, Dev());
  std::vector<at::Tensor> params = model.parameters();
  auto step = [&] {
    at::Tensor loss = at::zeros({}, at::TensorOptions().device(Dev()));
    {
      AutocastScope autocast(Dev().type(), precision);
      const DetectorOutput out = model.Forward(images, &targets);
      for (const auto& [k, v] : out.losses) loss = loss + v;
    }
    sgd.zero_grad();
    scaler.Scale(loss).backward();
    if (scaler.Unscale(params)) sgd.step();
    scaler.Update();
    Sync();
  };
  step();  // warm-up, as the torchvision side does
  for (auto _ : state) step();
}

void BM_Inference(benchmark::State& state) {
  Threads();
  torch::manual_seed(3);
  FasterRCNN model(Detector(50, 800));
  model.to(Dev());
  model.eval();
  const at::Tensor image = at::rand({3, 800, 800}).to(Dev());
  torch::NoGradGuard no_grad;
  model.Forward({image});  // warm-up, as the torchvision side does
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.Forward({image}));
    Sync();
  }
}

// The backbone and neck alone at the inference case's size (to split the inference time).
void BM_InferenceFeatures(benchmark::State& state) {
  Threads();
  torch::manual_seed(3);
  FasterRCNN model(Detector(50, 800));
  model.to(Dev());
  model.eval();
  const at::Tensor batch = at::rand({1, 3, 800, 800}).to(Dev());
  torch::NoGradGuard no_grad;
  model.Features(batch);
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.Features(batch));
    Sync();
  }
}

// Composing FashionDet scenes (128 px canvas, 1-4 items), one thread.
void BM_FashionDet(benchmark::State& state) {
  FashionDetOptions o;
  o.set_split("train");
  o.set_num_images(100000);
  FashionDet data(o);
  if (!data.Load().ok()) {
    state.SkipWithError("Fashion-MNIST is not installed");
    return;
  }
  int64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(data.Get(i++));
  state.SetItemsProcessed(i);
}

void BM_CocoEval(benchmark::State& state) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> u(0, 1);
  CocoEvaluator e;
  for (int i = 0; i < 5000; ++i) {
    std::vector<CocoGt> gts;
    std::vector<CocoDet> dets;
    for (int k = 0; k < 7; ++k) {
      const double x = u(rng) * 500, y = u(rng) * 400, w = 10 + u(rng) * 200, h = 10 + u(rng) * 200;
      gts.push_back({1 + k % 20, {x, y, w, h}, w * h, false});
    }
    for (int k = 0; k < 100; ++k) {
      const CocoGt& g = gts[k % gts.size()];
      dets.push_back({k % 3 == 0 ? g.category : 1 + k % 20,
                      {g.bbox[0] + u(rng) * 20, g.bbox[1] + u(rng) * 20, g.bbox[2], g.bbox[3]},
                      u(rng)});
    }
    e.AddImage(i, std::move(gts), std::move(dets));
  }
  for (auto _ : state) benchmark::DoNotOptimize(e.Evaluate());
}

BENCHMARK(BM_RoiAlignForward)->Name("roi_align_forward")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RoiAlignBackward)->Name("roi_align_backward")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RoiAlignAutograd)->Name("roi_align_autograd")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Nms)->Name("nms")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(TrainStep, float32, c10::kFloat)
    ->Name("train_step")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);
BENCHMARK_CAPTURE(TrainStep, bfloat16, c10::kBFloat16)
    ->Name("train_step_bf16")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);
BENCHMARK_CAPTURE(TrainStep, float16, c10::kHalf)
    ->Name("train_step_fp16")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);
BENCHMARK(BM_Inference)->Name("inference")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_InferenceFeatures)
    ->Name("inference_features")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK(BM_FashionDet)->Name("fashiondet_scene")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CocoEval)->Name("coco_eval")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace spnas

BENCHMARK_MAIN();
