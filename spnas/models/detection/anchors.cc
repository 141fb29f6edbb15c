#include "spnas/models/detection/anchors.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace spnas {

AnchorGenerator::AnchorGenerator(std::vector<std::vector<double>> sizes, std::vector<std::vector<double>> aspect_ratios)
    : sizes_(std::move(sizes)), aspect_ratios_(std::move(aspect_ratios)) {
  TORCH_CHECK(sizes_.size() == aspect_ratios_.size(), "anchors: ", sizes_.size(), " levels of sizes but ",
              aspect_ratios_.size(), " of aspect ratios");
}

std::vector<int64_t> AnchorGenerator::NumAnchorsPerLocation() const {
  std::vector<int64_t> n;
  for (size_t i = 0; i < sizes_.size(); ++i) n.push_back(sizes_[i].size() * aspect_ratios_[i].size());
  return n;
}

at::Tensor AnchorGenerator::CellAnchors(size_t level, const at::TensorOptions& options) const {
  const auto key =
      std::make_tuple(level, static_cast<int>(options.device().type()), static_cast<int>(options.device().index()),
                      static_cast<int>(c10::typeMetaToScalarType(options.dtype())));
  std::lock_guard<std::mutex> lock(cache_->mutex);
  at::Tensor& anchors = cache_->cell_anchors[key];
  if (anchors.defined()) return anchors;
  // Computed on the CPU as torchvision does on the features' device (same rounding), then moved.
  const auto cpu = options.device(c10::kCPU);
  const at::Tensor scales = at::tensor(sizes_[level], cpu);
  const at::Tensor ratios = at::tensor(aspect_ratios_[level], cpu);
  const at::Tensor h_ratios = at::sqrt(ratios);
  const at::Tensor w_ratios = 1 / h_ratios;
  const at::Tensor ws = (w_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
  const at::Tensor hs = (h_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
  anchors = (at::stack({-ws, -hs, ws, hs}, 1) / 2).round().to(options.device());
  return anchors;
}

at::Tensor AnchorGenerator::operator()(int64_t image_height, int64_t image_width,
                                       const std::vector<at::Tensor>& features) const {
  TORCH_CHECK(features.size() == sizes_.size(), "anchors: the neck gives ", features.size(),
              " feature levels but anchor sizes are given for ", sizes_.size(), "; set one anchor size per level");
  std::vector<at::Tensor> all;
  for (size_t level = 0; level < features.size(); ++level) {
    const int64_t grid_h = features[level].size(-2), grid_w = features[level].size(-1);
    const int64_t stride_h = image_height / grid_h, stride_w = image_width / grid_w;
    const auto options = features[level].options().dtype(at::promote_types(features[level].scalar_type(), at::kFloat));
    const at::Tensor base = CellAnchors(level, options);
    const at::Tensor shifts_x = at::arange(0, grid_w, options.dtype(at::kInt)).to(options.dtype()) * stride_w;
    const at::Tensor shifts_y = at::arange(0, grid_h, options.dtype(at::kInt)).to(options.dtype()) * stride_h;
    auto mesh = at::meshgrid({shifts_y, shifts_x}, "ij");
    const at::Tensor sy = mesh[0].reshape(-1), sx = mesh[1].reshape(-1);
    const at::Tensor shifts = at::stack({sx, sy, sx, sy}, 1);
    all.push_back((shifts.view({-1, 1, 4}) + base.view({1, -1, 4})).reshape({-1, 4}));
  }
  return at::cat(all, 0);
}

}  // namespace spnas
