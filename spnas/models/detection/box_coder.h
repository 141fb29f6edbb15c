// BoxCoder (torchvision): box regression deltas (dx, dy, dw, dh) relative to reference boxes.
#ifndef SPNAS_MODELS_DETECTION_BOX_CODER_H_
#define SPNAS_MODELS_DETECTION_BOX_CODER_H_

#include <array>
#include <cmath>

#include <ATen/core/Tensor.h>

namespace spnas {

class BoxCoder {
 public:
  explicit BoxCoder(std::array<double, 4> weights, double clip = std::log(1000.0 / 16))
      : weights_(weights), clip_(clip) {}

  // Deltas that turn `proposals` [N, 4] into `reference_boxes` [N, 4].
  at::Tensor Encode(const at::Tensor& reference_boxes, const at::Tensor& proposals) const;
  // Boxes [N, K, 4] from deltas [N, 4K] applied to `boxes` [N, 4].
  at::Tensor Decode(const at::Tensor& rel_codes, const at::Tensor& boxes) const;

 private:
  std::array<double, 4> weights_;
  double clip_;
};

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_BOX_CODER_H_
