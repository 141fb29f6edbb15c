#include "spnas/models/detection/box_coder.h"

#include <ATen/ATen.h>

namespace spnas {

at::Tensor BoxCoder::Encode(const at::Tensor& reference_boxes, const at::Tensor& proposals) const {
  // torchvision rounds the weights to float32; as C++ scalars they need no host-to-device copy.
  std::array<double, 4> w;
  for (int i = 0; i < 4; ++i) w[i] = static_cast<float>(weights_[i]);
  const at::Tensor px1 = proposals.select(1, 0).unsqueeze(1), py1 = proposals.select(1, 1).unsqueeze(1);
  const at::Tensor px2 = proposals.select(1, 2).unsqueeze(1), py2 = proposals.select(1, 3).unsqueeze(1);
  const at::Tensor gx1 = reference_boxes.select(1, 0).unsqueeze(1), gy1 = reference_boxes.select(1, 1).unsqueeze(1);
  const at::Tensor gx2 = reference_boxes.select(1, 2).unsqueeze(1), gy2 = reference_boxes.select(1, 3).unsqueeze(1);
  const at::Tensor ex_w = px2 - px1, ex_h = py2 - py1;
  const at::Tensor ex_x = px1 + 0.5 * ex_w, ex_y = py1 + 0.5 * ex_h;
  const at::Tensor gt_w = gx2 - gx1, gt_h = gy2 - gy1;
  const at::Tensor gt_x = gx1 + 0.5 * gt_w, gt_y = gy1 + 0.5 * gt_h;
  const at::Tensor dx = w[0] * (gt_x - ex_x) / ex_w;
  const at::Tensor dy = w[1] * (gt_y - ex_y) / ex_h;
  const at::Tensor dw = w[2] * at::log(gt_w / ex_w);
  const at::Tensor dh = w[3] * at::log(gt_h / ex_h);
  return at::cat({dx, dy, dw, dh}, 1);
}

at::Tensor BoxCoder::Decode(const at::Tensor& rel_codes_in, const at::Tensor& boxes_in) const {
  // Boxes decode in float32 at least: under autocast the deltas come out of the network in half
  // precision, where a coordinate near 800 is off by up to 4 pixels in bfloat16.
  const c10::ScalarType dtype = at::promote_types(rel_codes_in.scalar_type(), at::kFloat);
  const at::Tensor rel_codes = rel_codes_in.to(dtype);
  const at::Tensor boxes = boxes_in.to(dtype);
  const at::Tensor widths = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor heights = boxes.select(1, 3) - boxes.select(1, 1);
  const at::Tensor ctr_x = boxes.select(1, 0) + 0.5 * widths;
  const at::Tensor ctr_y = boxes.select(1, 1) + 0.5 * heights;
  const at::Tensor codes = rel_codes.reshape({boxes.size(0), -1});
  const at::Tensor dx = codes.slice(1, 0, c10::nullopt, 4) / weights_[0];
  const at::Tensor dy = codes.slice(1, 1, c10::nullopt, 4) / weights_[1];
  const at::Tensor dw = (codes.slice(1, 2, c10::nullopt, 4) / weights_[2]).clamp_max(clip_);
  const at::Tensor dh = (codes.slice(1, 3, c10::nullopt, 4) / weights_[3]).clamp_max(clip_);
  const at::Tensor pred_ctr_x = dx * widths.unsqueeze(1) + ctr_x.unsqueeze(1);
  const at::Tensor pred_ctr_y = dy * heights.unsqueeze(1) + ctr_y.unsqueeze(1);
  const at::Tensor pred_w = at::exp(dw) * widths.unsqueeze(1);
  const at::Tensor pred_h = at::exp(dh) * heights.unsqueeze(1);
  const at::Tensor half = at::scalar_tensor(0.5, pred_h.options());
  const at::Tensor half_h = half * pred_h, half_w = half * pred_w;
  const at::Tensor pred =
      at::stack({pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h}, 2).flatten(1);
  return pred.reshape({boxes.size(0), -1, 4});
}

}  // namespace spnas
