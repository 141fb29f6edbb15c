// CUDA kernel of NMS, called by Nms (nms.h) for CUDA tensors once it has checked the inputs.
#ifndef SPNAS_OPS_NMS_NMS_CUDA_H_
#define SPNAS_OPS_NMS_NMS_CUDA_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

// Same result as the CPU Nms: int64 indices of the kept boxes by decreasing score, on the
// boxes' device. boxes: [N, 4] float, double, half or bfloat16; scores: [N], same dtype.
at::Tensor NmsCuda(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_NMS_NMS_CUDA_H_
