// AnchorGenerator (torchvision): per feature level, anchors of the level's sizes x aspect
// ratios at every cell, strided by the padded image size / feature size.
#ifndef SPNAS_MODELS_DETECTION_ANCHORS_H_
#define SPNAS_MODELS_DETECTION_ANCHORS_H_

#include <vector>

#include <ATen/core/Tensor.h>

namespace spnas {

class AnchorGenerator {
 public:
  // sizes[level] and aspect_ratios[level]: the anchors of one level.
  AnchorGenerator(std::vector<std::vector<double>> sizes, std::vector<std::vector<double>> aspect_ratios);

  // Anchors [sum over levels of H*W*A, 4] for a padded batch of (height, width), the same for
  // every image of the batch.
  at::Tensor operator()(int64_t image_height, int64_t image_width, const std::vector<at::Tensor>& features) const;
  std::vector<int64_t> NumAnchorsPerLocation() const;
  // The zero-centred anchors of one level [A, 4].
  at::Tensor CellAnchors(size_t level, const at::TensorOptions& options) const;

 private:
  std::vector<std::vector<double>> sizes_, aspect_ratios_;
};

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_ANCHORS_H_
