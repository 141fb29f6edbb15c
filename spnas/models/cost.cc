#include "spnas/models/cost.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "spnas/device/device.h"

namespace spnas {

int64_t CountParameters(const torch::nn::Module& module, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (!trainable_only || p.requires_grad()) n += p.numel();
  }
  return n;
}

namespace {

thread_local double* g_macs = nullptr;

std::unique_ptr<at::ObserverContext> OnOp(const at::RecordFunction& fn) {
  if (g_macs == nullptr) return nullptr;
  const char* name = fn.name();
  const bool conv = std::strcmp(name, "aten::convolution") == 0;
  const bool linear = std::strcmp(name, "aten::linear") == 0;
  if (!conv && !linear) return nullptr;
  const auto inputs = fn.inputs();
  if (conv && inputs.size() >= 9 && inputs[0].isTensor() && inputs[1].isTensor()) {
    // out = N x Cout x Ho x Wo; each output element takes Cin/groups x kh x kw multiply-adds.
    const at::Tensor& x = inputs[0].toTensor();
    const at::Tensor& w = inputs[1].toTensor();
    const auto stride = inputs[3].toIntVector(), padding = inputs[4].toIntVector(), dilation = inputs[5].toIntVector();
    double out = static_cast<double>(x.size(0)) * w.size(0);
    for (int d = 0; d < 2; ++d) {
      const int64_t in = x.size(2 + d), k = w.size(2 + d);
      out *= (in + 2 * padding[d] - dilation[d] * (k - 1) - 1) / stride[d] + 1;
    }
    *g_macs += out * w.size(1) * w.size(2) * w.size(3);
  } else if (linear && inputs.size() >= 2 && inputs[0].isTensor() && inputs[1].isTensor()) {
    const at::Tensor& x = inputs[0].toTensor();
    const at::Tensor& w = inputs[1].toTensor();
    *g_macs += static_cast<double>(x.numel() / x.size(-1)) * w.size(0) * w.size(1);
  }
  return nullptr;
}

}  // namespace

double CountMultiplyAdds(const std::function<void()>& forward) {
  double macs = 0;
  g_macs = &macs;
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(OnOp).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  {
    // Count on this thread only: intra-op threads run kernels, not these operators.
    at::NoGradGuard no_grad;
    forward();
  }
  at::removeCallback(handle);
  g_macs = nullptr;
  return macs;
}

double MeasureLatencyMs(const std::function<void()>& forward, const c10::Device& device, int runs, int warmup) {
  at::NoGradGuard no_grad;
  for (int i = 0; i < warmup; ++i) forward();
  Synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    forward();
    Synchronize(device);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double TrainingStepMemoryBytes(Model& model, int64_t input_size, const c10::Device& device) {
  double weights = 0;
  std::vector<at::Tensor> buffers;
  for (const at::Tensor& b : model.buffers()) {
    weights += static_cast<double>(b.nbytes());
    buffers.push_back(b.clone());
  }
  for (const at::Tensor& p : model.parameters()) weights += static_cast<double>(p.nbytes());
  // Gradients left by training would be added to in place inside the step instead of being
  // allocated, so the count would depend on the model's history: set them aside meanwhile.
  std::vector<at::Tensor> grads;
  for (at::Tensor& p : model.parameters()) {
    grads.push_back(p.grad());
    p.mutable_grad() = at::Tensor();
  }
  const auto on_device = at::TensorOptions().device(device);
  int64_t peak = 0;
  {
    at::AutoGradMode grad(true);
    PeakMemoryMeter meter(device);
    model.train();
    // Two images: BatchNorm in training needs more than one value per channel, and the last
    // stage of a small input can be 1 x 1.
    const at::Tensor images = at::zeros({2, 3, input_size, input_size}, on_device);
    at::Tensor loss;
    if (auto* detector = dynamic_cast<Detector*>(&model)) {
      const double s = static_cast<double>(input_size);
      const Target target{at::tensor({s / 4, s / 4, 3 * s / 4, 3 * s / 4}, on_device.dtype(at::kFloat)).view({1, 4}),
                          at::ones({1}, on_device.dtype(at::kLong))};
      const std::vector<Target> targets = {target, target};
      const DetectorOutput out = detector->Forward({images[0], images[1]}, &targets);
      loss = at::zeros({}, on_device);
      for (const auto& [name, value] : out.losses) loss = loss + value;
    } else if (auto* classifier = dynamic_cast<Classifier*>(&model)) {
      loss = classifier->Forward(images).sum();
    }
    if (loss.defined() && loss.requires_grad()) loss.backward();
    Synchronize(device);
    peak = meter.PeakBytes();
    // Gradients allocated here are freed here, where the meter sees them go.
    for (at::Tensor& p : model.parameters()) p.mutable_grad() = at::Tensor();
  }
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (at::Tensor& b : model.buffers()) b.copy_(buffers[i++]);
  i = 0;
  for (at::Tensor& p : model.parameters()) p.mutable_grad() = grads[i++];
  model.eval();
  return weights + static_cast<double>(peak);
}

std::map<std::string, double> ModelCosts(Model& model, int64_t input_size, const c10::Device& device, int latency_runs,
                                         bool memory) {
  std::map<std::string, double> costs;
  if (memory) costs["memory_mb"] = TrainingStepMemoryBytes(model, input_size, device) / (1 << 20);
  model.eval();
  at::NoGradGuard no_grad;
  costs["params"] = static_cast<double>(CountParameters(model));
  const auto on_device = at::TensorOptions().device(device);
  const at::Tensor batch = at::zeros({1, 3, input_size, input_size}, on_device);
  std::function<void()> run;
  if (auto* detector = dynamic_cast<Detector*>(&model)) {
    costs["flops"] = CountMultiplyAdds([&] { detector->Features(batch); });
    const at::Tensor image = batch[0];
    run = [detector, image] { detector->Forward({image}); };
  } else if (auto* classifier = dynamic_cast<Classifier*>(&model)) {
    run = [classifier, batch] { classifier->Forward(batch); };
    costs["flops"] = CountMultiplyAdds(run);
  }
  if (run && latency_runs > 0) costs["latency_ms"] = MeasureLatencyMs(run, device, latency_runs, 1);
  return costs;
}

}  // namespace spnas
