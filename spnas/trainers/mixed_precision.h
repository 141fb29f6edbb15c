// Mixed-precision training: the forward pass under LibTorch's autocast (float16 or bfloat16 on
// CUDA, bfloat16 on the CPU), and dynamic loss scaling for float16 (whose small gradients would
// otherwise flush to zero).
#ifndef SPNAS_TRAINERS_MIXED_PRECISION_H_
#define SPNAS_TRAINERS_MIXED_PRECISION_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <string>
#include <vector>

namespace spnas {

// Autocast to `dtype` on `device`'s type while alive; does nothing when `dtype` is float32.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, c10::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
  c10::DeviceType device_;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kHalf;
};

// Loss scaling as torch.cuda.amp.GradScaler does it: the loss is multiplied by the scale, the
// gradients divided back before the step; a step whose gradients overflowed is skipped and the
// scale halved; after `growth_interval` clean steps it doubles. Disabled: a pass-through.
class LossScaler {
 public:
  LossScaler(bool enabled, const c10::Device& device, double initial_scale = 65536.0, int64_t growth_interval = 2000);
  at::Tensor Scale(const at::Tensor& loss) const;
  // Unscales the gradients of `params` in place; false when one is not finite (skip the step).
  // The one host sync of a float16 step, as in torch.cuda.amp.GradScaler.step; none when
  // disabled.
  bool Unscale(const std::vector<at::Tensor>& params);
  // After each step (taken or skipped).
  void Update();
  // The scale and the count of clean steps, for a training checkpoint ("loss_scale",
  // "loss_scale_growth_tracker"; nothing when disabled), and back.
  std::map<std::string, at::Tensor> State() const;
  void Restore(const std::map<std::string, at::Tensor>& state);

 private:
  bool enabled_;
  int64_t growth_interval_;
  at::Tensor scale_, growth_tracker_, found_inf_;
};

}  // namespace spnas

#endif  // SPNAS_TRAINERS_MIXED_PRECISION_H_
