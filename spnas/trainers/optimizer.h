// The optimizer and lr_schedule kinds.
#ifndef SPNAS_TRAINERS_OPTIMIZER_H_
#define SPNAS_TRAINERS_OPTIMIZER_H_

#include <memory>
#include <vector>

#include <torch/optim/optimizer.h>

#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/models/state_dict.h"

namespace spnas {

class OptimizerFactory {
 public:
  virtual ~OptimizerFactory() = default;
  virtual std::unique_ptr<torch::optim::Optimizer> Make(std::vector<at::Tensor> parameters) const = 0;
  virtual double BaseLr() const = 0;
};

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  // The learning rate at `iteration` (0-based) of `total` iterations, before warmup.
  virtual double Lr(double base_lr, int64_t iteration, int64_t iterations_per_epoch, int64_t total) const = 0;
};

SPNAS_DECLARE_REGISTRY(OptimizerRegistry, OptimizerFactory);
SPNAS_DECLARE_REGISTRY(LrScheduleRegistry, LrSchedule);

// Sets the learning rate of every parameter group.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`, as
// torch.nn.utils.clip_grad_norm_ does, with one foreach kernel for the norms and one for the
// scaling; the norm stays on the device (the C++ clip_grad_norm_ returns it as a double, which
// waits for the device).
void ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm);

// The per-parameter state of an SGD, Adam or AdamW optimizer, named as torch.optim's state_dict
// numbers it: "<index in params>.<field>" (momentum_buffer; step, exp_avg, exp_avg_sq,
// max_exp_avg_sq). Another optimizer's state is an error that names it.
StatusOr<StateDict> OptimizerState(const torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params);
// Gives the optimizer back the state OptimizerState took, for the same parameters.
Status RestoreOptimizerState(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params,
                             const StateDict& state);

}  // namespace spnas

#endif  // SPNAS_TRAINERS_OPTIMIZER_H_
