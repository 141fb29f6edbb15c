// Autograd wrapper: RoiAlign is differentiable with respect to its input feature map.
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

#include "spnas/ops/roi_align/roi_align.h"

namespace spnas::ops {
namespace {

class RoiAlignFunction : public torch::autograd::Function<RoiAlignFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                                                const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                                                int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["pooled_height"] = pooled_height;
    ctx->saved_data["pooled_width"] = pooled_width;
    ctx->saved_data["sampling_ratio"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
    ctx->saved_data["input_shape"] = input.sizes();
    ctx->save_for_backward({rois});
    at::AutoDispatchBelowADInplaceOrView guard;
    return {RoiAlignForward(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 const torch::autograd::variable_list& grad_output) {
    const at::Tensor rois = ctx->get_saved_variables()[0];
    const auto shape = ctx->saved_data["input_shape"].toIntList();
    const at::Tensor grad_input = RoiAlignBackward(
        grad_output[0], rois, ctx->saved_data["spatial_scale"].toDouble(), ctx->saved_data["pooled_height"].toInt(),
        ctx->saved_data["pooled_width"].toInt(), shape[0], shape[1], shape[2], shape[3],
        ctx->saved_data["sampling_ratio"].toInt(), ctx->saved_data["aligned"].toBool());
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor RoiAlign(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                    int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  // Under autocast, pool in float32 and hand back the input's dtype, as torchvision's Autocast
  // kernel does: sample positions in half precision would be off by pixels on large maps.
  if (at::autocast::is_autocast_enabled(input.device().type()) &&
      (input.scalar_type() != at::kFloat || rois.scalar_type() != at::kFloat)) {
    return RoiAlign(input.to(at::kFloat), rois.to(at::kFloat), spatial_scale, pooled_height, pooled_width,
                    sampling_ratio, aligned)
        .to(input.scalar_type());
  }
  return RoiAlignFunction::apply(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)[0];
}

}  // namespace spnas::ops
