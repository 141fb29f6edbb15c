// Cost of a model: parameters, multiply-adds (FLOPs as SP-NAS and torchvision papers count
// them: one multiply-add of a conv or linear layer is one FLOP) and latency.
#ifndef SPNAS_MODELS_COST_H_
#define SPNAS_MODELS_COST_H_

#include <functional>
#include <map>
#include <string>

#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include "spnas/models/model.h"

namespace spnas {

int64_t CountParameters(const torch::nn::Module& module, bool trainable_only = false);

// Multiply-adds of every convolution and linear layer that `forward` runs (counted from the
// operators LibTorch dispatches, so any model is covered).
double CountMultiplyAdds(const std::function<void()>& forward);

// Median wall time of `forward` in milliseconds over `runs` after `warmup` runs, each run
// waiting for the work it queued on `device` (CUDA runs asynchronously).
double MeasureLatencyMs(const std::function<void()>& forward, const c10::Device& device, int runs = 10, int warmup = 2);

// Bytes one training step needs on `device`: the parameters and buffers plus the peak of what
// the step allocates (activations kept for the backward, gradients, workspaces). The step runs
// forward and backward on two [3, size, size] images (a detector's with one box each), since
// BatchNorm in training needs more than one value per channel. The model's buffers (BatchNorm
// statistics) are restored and its gradients dropped afterwards.
double TrainingStepMemoryBytes(Model& model, int64_t input_size, const c10::Device& device);

// The costs a search weighs, of `model` on its device for a [1, 3, size, size] input: "params",
// "flops" (of the backbone and neck for a detector, the architecture searched; of the whole
// network for a classifier), when latency_runs > 0 "latency_ms" of the whole model (median of
// latency_runs after one warm-up), and with `memory` "memory_mb" (TrainingStepMemoryBytes).
// Leaves the model in eval mode.
std::map<std::string, double> ModelCosts(Model& model, int64_t input_size, const c10::Device& device, int latency_runs,
                                         bool memory = false);

}  // namespace spnas

#endif  // SPNAS_MODELS_COST_H_
