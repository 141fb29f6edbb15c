// CUDA kernels of RoIAlign, called by RoiAlignForward / RoiAlignBackward (roi_align.h) for CUDA
// tensors once those have checked the inputs. float, double, half and bfloat16.
#ifndef SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_CUDA_H_
#define SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_CUDA_H_

#include <ATen/core/Tensor.h>

namespace spnas::ops {

at::Tensor RoiAlignForwardCuda(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                               int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned);
at::Tensor RoiAlignBackwardCuda(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                                int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                                int64_t height, int64_t width, int64_t sampling_ratio, bool aligned);

}  // namespace spnas::ops

#endif  // SPNAS_OPS_ROI_ALIGN_ROI_ALIGN_CUDA_H_
