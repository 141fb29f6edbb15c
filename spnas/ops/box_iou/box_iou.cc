#include "spnas/ops/box_iou/box_iou.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace spnas::ops {
namespace {

void CheckBoxes(const at::Tensor& boxes, const char* name) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, name, " should be a [N, 4] tensor of (x1, y1, x2, y2), got ",
              boxes.sizes());
}

}  // namespace

at::Tensor BoxArea(const at::Tensor& boxes) {
  CheckBoxes(boxes, "boxes");
  return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

at::Tensor BoxIou(const at::Tensor& boxes1, const at::Tensor& boxes2) {
  CheckBoxes(boxes1, "boxes1");
  CheckBoxes(boxes2, "boxes2");
  TORCH_CHECK(boxes1.device() == boxes2.device(), "box_iou: boxes1 and boxes2 should be on the same device, got ",
              boxes1.device(), " and ", boxes2.device());
  // Mixed dtypes promote, and half precision computes in float32, as torchvision's box_iou
  // does: areas of boxes hundreds of pixels wide overflow float16.
  const c10::ScalarType dtype =
      at::promote_types(at::promote_types(boxes1.scalar_type(), boxes2.scalar_type()), at::kFloat);
  const at::Tensor b1 = boxes1.to(dtype), b2 = boxes2.to(dtype);
  const at::Tensor area1 = BoxArea(b1);
  const at::Tensor area2 = BoxArea(b2);
  const at::Tensor lt = at::max(b1.slice(1, 0, 2).unsqueeze(1), b2.slice(1, 0, 2));
  const at::Tensor rb = at::min(b1.slice(1, 2, 4).unsqueeze(1), b2.slice(1, 2, 4));
  const at::Tensor wh = (rb - lt).clamp_min(0);
  const at::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
  const at::Tensor unions = area1.unsqueeze(1) + area2 - inter;
  return inter / unions;
}

at::Tensor ClipBoxesToImage(const at::Tensor& boxes, int64_t height, int64_t width) {
  const int64_t dim = boxes.dim();
  at::Tensor x = boxes.slice(dim - 1, 0, 4, 2).clamp(0, static_cast<double>(width));
  at::Tensor y = boxes.slice(dim - 1, 1, 4, 2).clamp(0, static_cast<double>(height));
  return at::stack({x, y}, dim).reshape(boxes.sizes());
}

at::Tensor RemoveSmallBoxes(const at::Tensor& boxes, double min_size) {
  CheckBoxes(boxes, "boxes");
  const at::Tensor ws = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor hs = boxes.select(1, 3) - boxes.select(1, 1);
  return at::where((ws >= min_size).logical_and(hs >= min_size))[0];
}

}  // namespace spnas::ops
