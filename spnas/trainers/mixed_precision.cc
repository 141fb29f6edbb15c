#include "spnas/trainers/mixed_precision.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

namespace spnas {

AutocastScope::AutocastScope(c10::DeviceType device, c10::ScalarType dtype)
    : active_(dtype != c10::kFloat), device_(device) {
  if (!active_) return;
  TORCH_CHECK(device == c10::kCUDA || dtype == c10::kBFloat16, "autocast to ", dtype, " needs CUDA; on ", device,
              " only bfloat16");
  was_enabled_ = at::autocast::is_autocast_enabled(device_);
  was_dtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The casts of the weights are cached for one forward pass only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, was_enabled_);
  at::autocast::set_autocast_dtype(device_, was_dtype_);
}

LossScaler::LossScaler(bool enabled, const c10::Device& device, double initial_scale, int64_t growth_interval)
    : enabled_(enabled), growth_interval_(growth_interval) {
  if (!enabled_) return;
  const auto f = at::TensorOptions().device(device).dtype(at::kFloat);
  scale_ = at::full({1}, initial_scale, f);
  growth_tracker_ = at::zeros({1}, f.dtype(at::kInt));
  found_inf_ = at::zeros({1}, f);
}

at::Tensor LossScaler::Scale(const at::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScaler::Unscale(const std::vector<at::Tensor>& params) {
  if (!enabled_) return true;
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  found_inf_.zero_();
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, scale_.reciprocal());
  return found_inf_.item<float>() == 0.0f;
}

void LossScaler::Update() {
  if (!enabled_) return;
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, 2.0, 0.5, growth_interval_);
}

std::map<std::string, at::Tensor> LossScaler::State() const {
  if (!enabled_) return {};
  return {{"loss_scale", scale_}, {"loss_scale_growth_tracker", growth_tracker_}};
}

void LossScaler::Restore(const std::map<std::string, at::Tensor>& state) {
  if (!enabled_) return;
  auto restore = [&](const char* name, at::Tensor& into) {
    auto it = state.find(name);
    if (it != state.end() && it->second.numel() == into.numel()) into.copy_(it->second.view_as(into));
  };
  restore("loss_scale", scale_);
  restore("loss_scale_growth_tracker", growth_tracker_);
}

}  // namespace spnas
