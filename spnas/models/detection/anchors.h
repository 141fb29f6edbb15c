// AnchorGenerator (torchvision): per feature level, anchors of the level's sizes x aspect
// ratios at every cell, strided by the padded image size / feature size.
#ifndef SPNAS_MODELS_DETECTION_ANCHORS_H_
#define SPNAS_MODELS_DETECTION_ANCHORS_H_

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include <ATen/core/Tensor.h>

namespace spnas {

class AnchorGenerator {
 public:
  // sizes[level] and aspect_ratios[level]: the anchors of one level.
  AnchorGenerator(std::vector<std::vector<double>> sizes, std::vector<std::vector<double>> aspect_ratios);

  // Anchors [sum over levels of H*W*A, 4] for a padded batch of (height, width), the same for
  // every image of the batch, on the features' device. float32 when the features are in half
  // precision (autocast): bfloat16 holds integers exactly only up to 256, and anchors are
  // integer pixel boxes up to the image size.
  at::Tensor operator()(int64_t image_height, int64_t image_width, const std::vector<at::Tensor>& features) const;
  std::vector<int64_t> NumAnchorsPerLocation() const;
  // The zero-centred anchors of one level [A, 4], made once per (level, device, dtype) and kept
  // there: on a GPU, building them from the sizes is a blocking host-to-device copy.
  at::Tensor CellAnchors(size_t level, const at::TensorOptions& options) const;

 private:
  std::vector<std::vector<double>> sizes_, aspect_ratios_;
  struct Cache {
    std::mutex mutex;
    std::map<std::tuple<size_t, int, int, int>, at::Tensor> cell_anchors;  // level, device, dtype
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_ANCHORS_H_
