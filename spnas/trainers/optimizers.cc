// Optimizer plugins (SGD, Adam) and learning-rate schedule plugins (MultiStepLR, CosineLR).
#include <ATen/ATen.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <string>

#include "spnas/trainers/optimizer.h"
#include "spnas/trainers/trainer_options.pb.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(OptimizerRegistry, "optimizer", OptimizerFactory);
SPNAS_DEFINE_REGISTRY(LrScheduleRegistry, "lr_schedule", LrSchedule);

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

void ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return;
  const at::Tensor norm = at::stack(at::_foreach_norm(grads, 2)).norm(2);
  // The same arithmetic as torch: max_norm / (norm + 1e-6), at most 1, applied to every gradient.
  const at::Tensor coefficient = (max_norm / (norm + 1e-6)).clamp_max(1.0);
  at::_foreach_mul_(grads, coefficient);
}

namespace {

// Adam and AdamW keep the same fields in two unrelated classes.
template <typename AdamState>
void SaveAdamState(const AdamState& s, const std::string& prefix, StateDict* out) {
  (*out)[prefix + "step"] = at::scalar_tensor(s.step(), at::kLong);
  (*out)[prefix + "exp_avg"] = s.exp_avg();
  (*out)[prefix + "exp_avg_sq"] = s.exp_avg_sq();
  if (s.max_exp_avg_sq().defined()) (*out)[prefix + "max_exp_avg_sq"] = s.max_exp_avg_sq();
}

template <typename AdamState>
std::unique_ptr<AdamState> LoadAdamState(const StateDict& in, const std::string& prefix, const at::Tensor& param) {
  auto s = std::make_unique<AdamState>();
  s->step(in.at(prefix + "step").item<int64_t>());
  s->exp_avg(in.at(prefix + "exp_avg").to(param.device()).clone());
  s->exp_avg_sq(in.at(prefix + "exp_avg_sq").to(param.device()).clone());
  auto max = in.find(prefix + "max_exp_avg_sq");
  if (max != in.end()) s->max_exp_avg_sq(max->second.to(param.device()).clone());
  return s;
}

}  // namespace

StatusOr<StateDict> OptimizerState(const torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params) {
  StateDict out;
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = optimizer.state().find(params[i].unsafeGetTensorImpl());
    if (it == optimizer.state().end()) continue;  // no step has touched it yet
    const std::string prefix = std::to_string(i) + ".";
    const torch::optim::OptimizerParamState* state = it->second.get();
    if (auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state)) {
      if (sgd->momentum_buffer().defined()) out[prefix + "momentum_buffer"] = sgd->momentum_buffer();
    } else if (auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(state)) {
      SaveAdamState(*adam, prefix, &out);
    } else if (auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(state)) {
      SaveAdamState(*adamw, prefix, &out);
    } else {
      return FailedPreconditionError("the state of this optimizer cannot be checkpointed: only SGD, Adam and AdamW's");
    }
  }
  return out;
}

Status RestoreOptimizerState(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params,
                             const StateDict& state) {
  const bool sgd = dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr;
  const bool adam = dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr;
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr;
  if (!sgd && !adam && !adamw) return FailedPreconditionError("only SGD, Adam and AdamW states can be restored");
  // Every saved entry must belong to a parameter of this optimizer, with its shape.
  for (const auto& [name, tensor] : state) {
    const std::string index_text = name.substr(0, name.find('.'));
    const bool number = !index_text.empty() && index_text.size() <= 9 &&
                        index_text.find_first_not_of("0123456789") == std::string::npos;
    const size_t index = number ? std::stoul(index_text) : params.size();
    const bool step = name == index_text + ".step";
    if (index >= params.size() || (!step && !tensor.sizes().equals(params[index].sizes()))) {
      return InvalidArgumentError("the optimizer state '", name, "' fits none of the model's ", params.size(),
                                  " trained parameters");
    }
  }
  optimizer.state().clear();
  try {
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string prefix = std::to_string(i) + ".";
      void* key = params[i].unsafeGetTensorImpl();
      if (sgd) {
        auto buffer = state.find(prefix + "momentum_buffer");
        if (buffer == state.end()) continue;
        auto s = std::make_unique<torch::optim::SGDParamState>();
        s->momentum_buffer(buffer->second.to(params[i].device()).clone());
        optimizer.state()[key] = std::move(s);
      } else if (state.count(prefix + "step")) {
        if (adam) optimizer.state()[key] = LoadAdamState<torch::optim::AdamParamState>(state, prefix, params[i]);
        if (adamw) optimizer.state()[key] = LoadAdamState<torch::optim::AdamWParamState>(state, prefix, params[i]);
      }
    }
  } catch (const std::out_of_range&) {
    return InvalidArgumentError("the optimizer state misses a field of an Adam parameter");
  }
  return Status::Ok();
}

namespace {

class SGD : public OptimizerFactory {
 public:
  using Options = SGDOptions;
  explicit SGD(const Options& o)
      : lr_(o.lr()), momentum_(o.momentum()), weight_decay_(o.weight_decay()), nesterov_(o.nesterov()) {}
  static void SetDefaults(Options* o) {
    if (!o->has_lr()) o->set_lr(0.02f);
    if (!o->has_momentum()) o->set_momentum(0.9f);
    if (!o->has_weight_decay()) o->set_weight_decay(1e-4f);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.lr() <= 0) return InvalidArgumentError("lr must be > 0, got ", o.lr());
    if (o.momentum() < 0 || o.momentum() >= 1) return InvalidArgumentError("momentum must be in [0, 1)");
    if (o.weight_decay() < 0) return InvalidArgumentError("weight_decay must be >= 0");
    if (o.nesterov() && o.momentum() == 0) return InvalidArgumentError("nesterov needs momentum > 0");
    return Status::Ok();
  }
  std::unique_ptr<torch::optim::Optimizer> Make(std::vector<at::Tensor> parameters) const override {
    return std::make_unique<torch::optim::SGD>(
        parameters, torch::optim::SGDOptions(lr_).momentum(momentum_).weight_decay(weight_decay_).nesterov(nesterov_));
  }
  double BaseLr() const override { return lr_; }

 private:
  double lr_, momentum_, weight_decay_;
  bool nesterov_;
};

class Adam : public OptimizerFactory {
 public:
  using Options = AdamOptions;
  explicit Adam(const Options& o) : options_(o), lr_(o.lr()) {}
  static void SetDefaults(Options* o) {
    if (!o->has_lr()) o->set_lr(1e-3f);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.lr() <= 0) return InvalidArgumentError("lr must be > 0, got ", o.lr());
    if (o.weight_decay() < 0) return InvalidArgumentError("weight_decay must be >= 0");
    return Status::Ok();
  }
  std::unique_ptr<torch::optim::Optimizer> Make(std::vector<at::Tensor> parameters) const override {
    if (options_.decoupled_weight_decay()) {
      return std::make_unique<torch::optim::AdamW>(
          parameters, torch::optim::AdamWOptions(lr_).weight_decay(options_.weight_decay()));
    }
    return std::make_unique<torch::optim::Adam>(parameters,
                                                torch::optim::AdamOptions(lr_).weight_decay(options_.weight_decay()));
  }
  double BaseLr() const override { return lr_; }

 private:
  Options options_;
  double lr_;
};

class MultiStepLR : public LrSchedule {
 public:
  using Options = MultiStepLROptions;
  explicit MultiStepLR(const Options& o)
      : milestones_(o.milestones().begin(), o.milestones().end()), gamma_(o.gamma()) {}
  static void SetDefaults(Options* o) {
    if (!o->has_gamma()) o->set_gamma(0.1f);
  }
  static Status ValidateOptions(const Options& o) {
    for (int i = 0; i < o.milestones_size(); ++i) {
      if (o.milestones(i) <= 0 || (i > 0 && o.milestones(i) <= o.milestones(i - 1))) {
        return InvalidArgumentError("milestones must be positive and increasing");
      }
    }
    if (o.gamma() <= 0) return InvalidArgumentError("gamma must be > 0");
    return Status::Ok();
  }
  double Lr(double base_lr, int64_t iteration, int64_t per_epoch, int64_t) const override {
    const int64_t epoch = per_epoch > 0 ? iteration / per_epoch : 0;
    int passed = 0;
    for (int m : milestones_) passed += epoch >= m;
    return base_lr * std::pow(gamma_, passed);
  }

 private:
  std::vector<int> milestones_;
  double gamma_;
};

class CosineLR : public LrSchedule {
 public:
  using Options = CosineLROptions;
  explicit CosineLR(const Options& o) : eta_min_(o.eta_min()) {}
  static Status ValidateOptions(const Options& o) {
    if (o.eta_min() < 0) return InvalidArgumentError("eta_min must be >= 0");
    return Status::Ok();
  }
  double Lr(double base_lr, int64_t iteration, int64_t, int64_t total) const override {
    const double progress = total > 0 ? static_cast<double>(iteration) / total : 0;
    return eta_min_ + (base_lr - eta_min_) * 0.5 * (1 + std::cos(M_PI * progress));
  }

 private:
  double eta_min_;
};

SPNAS_REGISTER_PLUGIN(OptimizerRegistry, SGD);
SPNAS_REGISTER_PLUGIN(OptimizerRegistry, Adam);
SPNAS_REGISTER_PLUGIN(LrScheduleRegistry, MultiStepLR);
SPNAS_REGISTER_PLUGIN(LrScheduleRegistry, CosineLR);

}  // namespace
}  // namespace spnas
