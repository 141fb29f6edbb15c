#include "spnas/models/batch_norm.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <mutex>
#include <string>

namespace spnas {
namespace {

std::mutex group_mutex;
std::shared_ptr<BatchNormGroup> current_group;

std::shared_ptr<BatchNormGroup> CurrentGroup() {
  std::lock_guard<std::mutex> lock(group_mutex);
  return current_group;
}

// Per channel over [N, C, H, W]: normalised by the global batch's mean and biased variance.
struct GroupBatchNorm : public torch::autograd::Function<GroupBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, double momentum,
                            double eps) {
    const std::shared_ptr<BatchNormGroup> group = CurrentGroup();
    const int64_t channels = x.size(1);
    const std::vector<int64_t> dims = {0, 2, 3};
    // Each rank's count, mean and sum of squared deviations, combined as Chan et al. do, in
    // double precision and rank order.
    at::Tensor mine = at::zeros({group->size, 1 + 2 * channels}, at::kDouble);
    if (!group->padding) {
      const auto [var, mean] = at::var_mean(x.detach(), dims, /*correction=*/0);
      const double n = static_cast<double>(x.numel() / channels);
      mine[group->rank][0] = n;
      mine[group->rank].slice(0, 1, 1 + channels).copy_(mean.to(at::kCPU));
      mine[group->rank].slice(0, 1 + channels).copy_(var.to(at::kCPU) * n);
    }
    const at::Tensor all = group->sum(mine.view(-1)).view({group->size, 1 + 2 * channels});
    const at::Tensor counts = all.select(1, 0).unsqueeze(1);
    const at::Tensor means = all.slice(1, 1, 1 + channels), squares = all.slice(1, 1 + channels);
    const double n = counts.sum().item<double>();
    TORCH_CHECK(n > 1, "BatchNorm over the ranks needs more than one value per channel, got ", n);
    const at::Tensor mean = (counts * means).sum(0) / n;
    const at::Tensor m2 = (squares + counts * (means - mean).pow(2)).sum(0);
    const at::Tensor var = m2 / n;
    const at::Tensor invstd = (var + eps).rsqrt();
    {
      at::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.options()) * momentum);
      running_var.mul_(1 - momentum).add_((m2 / (n - 1)).to(running_var.options()) * momentum);
    }
    const at::Tensor mean_x = mean.to(x.options()).view({1, -1, 1, 1});
    const at::Tensor invstd_x = invstd.to(x.options()).view({1, -1, 1, 1});
    const at::Tensor xhat = (x - mean_x) * invstd_x;
    ctx->save_for_backward({xhat, weight, invstd_x});
    ctx->saved_data["n"] = n;
    ctx->saved_data["padding"] = group->padding;
    return xhat * weight.view({1, -1, 1, 1}) + bias.view({1, -1, 1, 1});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const std::shared_ptr<BatchNormGroup> group = CurrentGroup();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &xhat = saved[0], &weight = saved[1], &invstd = saved[2];
    const double n = ctx->saved_data["n"].toDouble();
    const bool padding = ctx->saved_data["padding"].toBool();
    const at::Tensor dy = grads[0].contiguous();
    const int64_t channels = xhat.size(1);
    const std::vector<int64_t> dims = {0, 2, 3};
    const at::Tensor sum_dy = dy.sum(dims);
    const at::Tensor sum_dy_xhat = (dy * xhat).sum(dims);
    // A stand-in batch's loss counts zero times, so its dy and sums are zero.
    const at::Tensor all = group->sum(at::cat({sum_dy, sum_dy_xhat}).to(at::kCPU, at::kDouble));
    // Left out of the statistics, a stand-in's inputs reach the loss only through their own
    // outputs, whose gradient is zero.
    if (padding) return {at::zeros_like(dy), sum_dy_xhat, sum_dy, {}, {}, {}, {}};
    const at::Tensor mean_dy = (all.slice(0, 0, channels) / n).to(dy.options()).view({1, -1, 1, 1});
    const at::Tensor mean_dy_xhat = (all.slice(0, channels) / n).to(dy.options()).view({1, -1, 1, 1});
    const at::Tensor dx = (dy - mean_dy - xhat * mean_dy_xhat) * (invstd * weight.view({1, -1, 1, 1}));
    // This rank's part of the parameters' gradients; the gradient reducer adds the ranks'.
    return {dx, sum_dy_xhat, sum_dy, {}, {}, {}, {}};
  }
};

}  // namespace

BatchNormGroupScope::BatchNormGroupScope(std::shared_ptr<BatchNormGroup> group) {
  std::lock_guard<std::mutex> lock(group_mutex);
  current_group = std::move(group);
}

BatchNormGroupScope::~BatchNormGroupScope() {
  std::lock_guard<std::mutex> lock(group_mutex);
  current_group.reset();
}

void BatchNorm2dImpl::AddPassStatistics(int passes) {
  TORCH_CHECK(options.track_running_stats(), "BatchNorm2d: statistics per pass need running statistics");
  for (int p = pass_statistics() + 1; p <= passes; ++p) {
    const std::string suffix = "_pass" + std::to_string(p);
    pass_statistics_.push_back({register_buffer("running_mean" + suffix, running_mean.clone()),
                                register_buffer("running_var" + suffix, running_var.clone()),
                                register_buffer("num_batches_tracked" + suffix, num_batches_tracked.clone())});
  }
}

at::Tensor BatchNorm2dImpl::ForwardPass(const at::Tensor& input, int pass) {
  TORCH_CHECK(pass >= 0 && pass <= pass_statistics(), "BatchNorm2d: pass ", pass, " has no statistics (the layer has ",
              pass_statistics(), " extra sets)");
  if (pass == 0 && (!is_training() || CurrentGroup() == nullptr)) return torch::nn::BatchNorm2dImpl::forward(input);
  TORCH_CHECK(input.dim() == 4, "BatchNorm2d: expected a 4-D input, got ", input.sizes());
  const Statistics stats =
      pass == 0 ? Statistics{running_mean, running_var, num_batches_tracked} : pass_statistics_[pass - 1];
  // As torch::nn::BatchNorm2d: an exponential average, or a cumulative one without momentum.
  double momentum = options.momentum().value_or(0.0);
  if (is_training()) {
    stats.batches.add_(1);
    if (!options.momentum().has_value()) momentum = 1.0 / stats.batches.item<double>();
  }
  if (!is_training() || CurrentGroup() == nullptr) {
    return at::batch_norm(input, weight, bias, stats.mean, stats.var, is_training(), momentum, options.eps(),
                          at::globalContext().userEnabledCuDNN());
  }
  TORCH_CHECK(options.affine() && options.track_running_stats(),
              "BatchNorm2d over the ranks needs affine parameters and running statistics");
  return GroupBatchNorm::apply(input, weight, bias, stats.mean, stats.var, momentum, options.eps());
}

}  // namespace spnas
