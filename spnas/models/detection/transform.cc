#include "spnas/models/detection/transform.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>

namespace spnas {

namespace F = torch::nn::functional;

at::Tensor ResizeBoxes(const at::Tensor& boxes, std::pair<int64_t, int64_t> from, std::pair<int64_t, int64_t> to) {
  // Ratios in float32, as torchvision computes them with float tensors.
  const float ratio_h = static_cast<float>(to.first) / static_cast<float>(from.first);
  const float ratio_w = static_cast<float>(to.second) / static_cast<float>(from.second);
  const auto scalar = boxes.options();
  const at::Tensor rh = at::scalar_tensor(ratio_h, scalar.dtype(at::kFloat));
  const at::Tensor rw = at::scalar_tensor(ratio_w, scalar.dtype(at::kFloat));
  auto parts = boxes.unbind(1);
  return at::stack({parts[0] * rw, parts[1] * rh, parts[2] * rw, parts[3] * rh}, 1);
}

std::pair<at::Tensor, at::Tensor> DetectionTransform::MeanAndStd(const at::TensorOptions& options) const {
  const auto key =
      std::make_tuple(static_cast<int>(options.device().type()), static_cast<int>(options.device().index()),
                      static_cast<int>(c10::typeMetaToScalarType(options.dtype())));
  std::lock_guard<std::mutex> lock(cache_->mutex);
  auto& entry = cache_->mean_std[key];
  if (!entry.first.defined()) {
    entry = {at::tensor(options_.mean, options).view({3, 1, 1}), at::tensor(options_.std, options).view({3, 1, 1})};
  }
  return entry;
}

ImageBatch DetectionTransform::operator()(const std::vector<at::Tensor>& images, std::vector<Target>* targets,
                                          bool training) const {
  TORCH_CHECK(!images.empty(), "detector: no images given");
  ImageBatch batch;
  std::vector<at::Tensor> resized;
  for (size_t i = 0; i < images.size(); ++i) {
    const at::Tensor& image = images[i];
    TORCH_CHECK(image.dim() == 3 && image.size(0) == 3, "detector: image ", i, " should be a [3, H, W] tensor, got ",
                image.sizes());
    TORCH_CHECK(image.is_floating_point(), "detector: image ", i, " should be floating point in [0, 1], got ",
                image.scalar_type());
    TORCH_CHECK(image.size(1) > 0 && image.size(2) > 0, "detector: image ", i, " is empty: ", image.sizes());
    const auto [mean, std] = MeanAndStd(image.options());
    at::Tensor x = (image - mean) / std;

    double size = static_cast<double>(options_.min_size.back());
    if (training) {
      // torchvision's torch_choice: one uniform draw per image, even with a single size.
      const at::Generator generator = targets != nullptr ? (*targets)[i].generator : at::Generator();
      const double u = at::empty({1})
                           .uniform_(0.0, static_cast<double>(options_.min_size.size()),
                                     generator.defined() ? std::optional<at::Generator>(generator) : std::nullopt)
                           .item<double>();
      size = static_cast<double>(options_.min_size[static_cast<size_t>(u)]);
    }
    // In double precision, as torchvision computes it: the resized size is floor(side x scale),
    // which a float32 scale can round to another integer.
    const int64_t h = x.size(1), w = x.size(2);
    const double scale = std::min(size / static_cast<double>(std::min(h, w)),
                                  static_cast<double>(options_.max_size) / static_cast<double>(std::max(h, w)));
    x = F::interpolate(x.unsqueeze(0), F::InterpolateFuncOptions()
                                           .scale_factor(std::vector<double>{scale, scale})
                                           .mode(torch::kBilinear)
                                           .align_corners(false)
                                           .recompute_scale_factor(true))
            .squeeze(0);
    if (targets != nullptr) {
      (*targets)[i].boxes = ResizeBoxes((*targets)[i].boxes, {h, w}, {x.size(1), x.size(2)});
    }
    batch.sizes.emplace_back(x.size(1), x.size(2));
    resized.push_back(x);
  }
  int64_t max_h = 0, max_w = 0;
  for (const auto& x : resized) {
    max_h = std::max(max_h, x.size(1));
    max_w = std::max(max_w, x.size(2));
  }
  const double stride = static_cast<double>(options_.size_divisible);
  max_h = static_cast<int64_t>(std::ceil(max_h / stride) * stride);
  max_w = static_cast<int64_t>(std::ceil(max_w / stride) * stride);
  batch.tensors = at::zeros({static_cast<int64_t>(resized.size()), 3, max_h, max_w}, resized[0].options());
  for (size_t i = 0; i < resized.size(); ++i) {
    batch.tensors[i].narrow(1, 0, resized[i].size(1)).narrow(2, 0, resized[i].size(2)).copy_(resized[i]);
  }
  return batch;
}

}  // namespace spnas
