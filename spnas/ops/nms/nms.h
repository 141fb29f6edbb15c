// Non-maximum suppression with torchvision.ops.nms / batched_nms semantics.
#ifndef SPNAS_OPS_NMS_NMS_H_
#define SPNAS_OPS_NMS_NMS_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

// Indices (int64) of the boxes kept, by decreasing score. A box is dropped when its IoU with a
// kept, higher-scoring box is > iou_threshold. boxes: [N, 4] (x1, y1, x2, y2); scores: [N].
at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// NMS within each category of `idxs` ([N] integers), never across categories. Same strategy
// choice as torchvision (per-class loop above 4000 box coordinates, offset trick below), so
// the kept indices match it exactly.
at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs, double iou_threshold);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_NMS_NMS_H_
