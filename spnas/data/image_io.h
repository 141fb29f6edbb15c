// Reading images into float RGB tensors and writing them, with OpenCV.
#ifndef SPNAS_DATA_IMAGE_IO_H_
#define SPNAS_DATA_IMAGE_IO_H_

#include <string>

#include <ATen/core/Tensor.h>

#include "spnas/core/status.h"

namespace spnas {

// [3, H, W] float in [0, 1], RGB.
StatusOr<at::Tensor> ReadImage(const std::string& path);
// From [3, H, W] float in [0, 1]; the format follows the extension (.png, .jpg).
Status WriteImage(const std::string& path, const at::Tensor& image);

}  // namespace spnas

#endif  // SPNAS_DATA_IMAGE_IO_H_
