// GeneralizedRCNNTransform: normalise, resize (min/max size), pad into a batch; and mapping
// boxes between image sizes. Same arithmetic as torchvision (float32 scale factors).
#ifndef SPNAS_MODELS_DETECTION_TRANSFORM_H_
#define SPNAS_MODELS_DETECTION_TRANSFORM_H_

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "spnas/models/model.h"

namespace spnas {

struct ImageBatch {
  at::Tensor tensors;                              // [N, 3, H, W], padded
  std::vector<std::pair<int64_t, int64_t>> sizes;  // (height, width) of each resized image
};

struct TransformOptions {
  std::vector<int64_t> min_size = {800};
  int64_t max_size = 1333;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
  int64_t size_divisible = 32;
};

class DetectionTransform {
 public:
  explicit DetectionTransform(TransformOptions options) : options_(std::move(options)) {}

  // Resizes each image (and its target's boxes). In training a min size is drawn per image
  // with torch's generator, as torchvision does.
  ImageBatch operator()(const std::vector<at::Tensor>& images, std::vector<Target>* targets, bool training) const;

 private:
  // The normalisation's [3, 1, 1] mean and std on a device, in a dtype: made once there, since
  // each is a host-to-device copy.
  std::pair<at::Tensor, at::Tensor> MeanAndStd(const at::TensorOptions& options) const;

  TransformOptions options_;
  struct Cache {
    std::mutex mutex;
    std::map<std::tuple<int, int, int>, std::pair<at::Tensor, at::Tensor>> mean_std;  // device, dtype
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

// Scales boxes [N, 4] from an image of `from` (h, w) to one of `to`.
at::Tensor ResizeBoxes(const at::Tensor& boxes, std::pair<int64_t, int64_t> from, std::pair<int64_t, int64_t> to);

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_TRANSFORM_H_
