// RoIAlign (Mask R-CNN) with torchvision.ops.roi_align semantics, forward and backward,
// parallel over the available threads on CPU.
#ifndef SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_H_
#define SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

// input: [N, C, H, W]; rois: [K, 5] rows of (batch index, x1, y1, x2, y2) in input-image
// coordinates, scaled by spatial_scale. Returns [K, C, pooled_height, pooled_width].
// sampling_ratio <= 0 samples ceil(roi size / pooled size) points per bin. Differentiable
// with respect to `input` (autograd). Under autocast it runs in float32 and returns the input's
// dtype. A RoI with a NaN or infinite coordinate pools zeros.
at::Tensor RoiAlign(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                    int64_t pooled_width, int64_t sampling_ratio, bool aligned);

// The raw kernels (no autograd), exposed for tests and benchmarks.
at::Tensor RoiAlignForward(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                           int64_t pooled_width, int64_t sampling_ratio, bool aligned);
at::Tensor RoiAlignBackward(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                            int64_t height, int64_t width, int64_t sampling_ratio, bool aligned);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_H_
