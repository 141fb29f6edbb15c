// Non-maximum suppression with torchvision.ops.nms / batched_nms semantics.
#ifndef SPNAS_OPS_NMS_NMS_H_
#define SPNAS_OPS_NMS_NMS_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

// Indices (int64) of the boxes kept, by decreasing score. A box is dropped when its IoU with a
// kept, higher-scoring box is > iou_threshold. boxes: [N, 4] (x1, y1, x2, y2); scores: [N].
at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// NMS within each category of `idxs` ([N] integers), never across categories. Same strategy
// choice as torchvision (a per-class loop above 4,000 box coordinates on the CPU and 100,000 on
// other devices, the offset trick below), so the kept indices match it exactly.
// Under autocast both functions run in float32, whatever the dtypes of boxes and scores.
at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs, double iou_threshold);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_NMS_NMS_H_
