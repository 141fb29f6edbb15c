// Pairwise IoU and box helpers with torchvision.ops semantics.
#ifndef SPNAS_OPS_BOX_IOU_BOX_IOU_H_
#define SPNAS_OPS_BOX_IOU_BOX_IOU_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

// [N, 4] -> [N] areas of (x1, y1, x2, y2) boxes.
at::Tensor BoxArea(const at::Tensor& boxes);
// [N, 4] x [M, 4] -> [N, M] intersection over union, in the dtypes' promotion and at least float32.
at::Tensor BoxIou(const at::Tensor& boxes1, const at::Tensor& boxes2);
// Clips boxes to an image of (height, width).
at::Tensor ClipBoxesToImage(const at::Tensor& boxes, int64_t height, int64_t width);
// Indices of the boxes whose sides are both >= min_size.
at::Tensor RemoveSmallBoxes(const at::Tensor& boxes, double min_size);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_BOX_IOU_BOX_IOU_H_
