#include "spnas/data/image_io.h"

#include <ATen/ATen.h>
#include <stb/stb_easy_font.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <vector>

namespace spnas {
namespace {

std::string Extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

void FillRect(at::Tensor& image, int64_t x1, int64_t y1, int64_t x2, int64_t y2, const Rgb& color) {
  x1 = std::max<int64_t>(x1, 0);
  y1 = std::max<int64_t>(y1, 0);
  x2 = std::min<int64_t>(x2, image.size(2));
  y2 = std::min<int64_t>(y2, image.size(1));
  if (x1 >= x2 || y1 >= y2) return;
  for (int c = 0; c < 3; ++c) image[c].slice(0, y1, y2).slice(1, x1, x2).fill_(color[c] / 255.0);
}

}  // namespace

StatusOr<at::Tensor> ReadImage(const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFoundError("image file '", path, "' does not exist");
  int width = 0, height = 0, channels = 0;
  if (stbi_info(path.c_str(), &width, &height, &channels) && static_cast<int64_t>(width) * height > kMaxImagePixels) {
    return InvalidArgumentError("image file '", path, "' is ", width, "x", height, " pixels, more than the ",
                                kMaxImagePixels >> 20, " megapixels spnas reads");
  }
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(stbi_load(path.c_str(), &width, &height, &channels, 3),
                                                   stbi_image_free);
  if (pixels == nullptr) {
    return InvalidArgumentError("image file '", path, "' cannot be decoded (", stbi_failure_reason(), ")");
  }
  const at::Tensor hwc = at::from_blob(pixels.get(), {height, width, 3}, at::kByte);
  return hwc.permute({2, 0, 1}).to(at::kFloat).div_(255).contiguous();
}

Status WriteImage(const std::string& path, const at::Tensor& image) {
  const at::Tensor hwc =
      image.detach().cpu().mul(255).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
  const int height = static_cast<int>(hwc.size(0)), width = static_cast<int>(hwc.size(1));
  const uint8_t* data = hwc.data_ptr<uint8_t>();
  const std::string ext = Extension(path);
  int ok = 0;
  if (ext == ".png") {
    ok = stbi_write_png(path.c_str(), width, height, 3, data, width * 3);
  } else if (ext == ".jpg" || ext == ".jpeg") {
    ok = stbi_write_jpg(path.c_str(), width, height, 3, data, 95);
  } else if (ext == ".bmp") {
    ok = stbi_write_bmp(path.c_str(), width, height, 3, data);
  } else {
    return InvalidArgumentError("cannot write image '", path, "': the extension should be .png, .jpg or .bmp");
  }
  if (!ok) return InternalError("cannot write image '", path, "'");
  return Status::Ok();
}

void DrawBox(at::Tensor& image, float x1, float y1, float x2, float y2, const Rgb& color, int thickness) {
  const int64_t l = static_cast<int64_t>(x1), t = static_cast<int64_t>(y1);
  const int64_t r = static_cast<int64_t>(x2) + 1, b = static_cast<int64_t>(y2) + 1;
  FillRect(image, l, t, r, t + thickness, color);
  FillRect(image, l, b - thickness, r, b, color);
  FillRect(image, l, t, l + thickness, b, color);
  FillRect(image, r - thickness, t, r, b, color);
}

void DrawText(at::Tensor& image, const std::string& text, float x, float y, const Rgb& color, int scale) {
  // stb_easy_font lays text out as axis-aligned quads (4 vertices of 16 bytes), 7 units high,
  // in at most about 270 bytes per character.
  std::vector<char> buffer(270 * (text.size() + 1));
  std::string mutable_text = text;
  const int quads =
      stb_easy_font_print(0, 0, mutable_text.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  const float top = y - 7.0f * scale;
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer.data() + (q * 4 + 0) * 16);
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + (q * 4 + 2) * 16);
    FillRect(image, static_cast<int64_t>(x + v0[0] * scale), static_cast<int64_t>(top + v0[1] * scale),
             static_cast<int64_t>(x + v2[0] * scale), static_cast<int64_t>(top + v2[1] * scale), color);
  }
}

}  // namespace spnas
