#include "spnas/data/image_io.h"

#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>

namespace spnas {

StatusOr<at::Tensor> ReadImage(const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFoundError("image file '", path, "' does not exist");
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) return InvalidArgumentError("image file '", path, "' cannot be decoded (corrupt or not an image)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  at::Tensor hwc = at::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, at::kByte);
  return hwc.permute({2, 0, 1}).to(at::kFloat).div_(255).contiguous();
}

Status WriteImage(const std::string& path, const at::Tensor& image) {
  const at::Tensor hwc =
      image.detach().mul(255).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path, bgr)) return InternalError("cannot write image '", path, "'");
  return Status::Ok();
}

}  // namespace spnas
