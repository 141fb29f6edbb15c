// Reading and writing images (PNG, JPEG, BMP, GIF, TGA, PNM ... with stb), and drawing boxes
// and labels on them.
#ifndef SPNAS_DATA_IMAGE_IO_H_
#define SPNAS_DATA_IMAGE_IO_H_

#include <array>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "spnas/core/status.h"

namespace spnas {

// [3, H, W] float in [0, 1], RGB.
// The largest image ReadImage decodes (64 megapixels, e.g. 8192 x 8192): its header's size is
// checked before decoding allocates for it (the float tensor takes 12 bytes per pixel).
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

StatusOr<at::Tensor> ReadImage(const std::string& path);
// From [3, H, W] float in [0, 1]; the format follows the extension (.png, .jpg/.jpeg, .bmp).
Status WriteImage(const std::string& path, const at::Tensor& image);

using Rgb = std::array<uint8_t, 3>;

// Draws on a [3, H, W] float image in place (pixel coordinates; parts outside are clipped):
// a box outline `thickness` pixels wide, and a line of text whose lower-left corner is (x, y),
// in a built-in font `scale` times its 7-pixel height.
void DrawBox(at::Tensor& image, float x1, float y1, float x2, float y2, const Rgb& color, int thickness);
void DrawText(at::Tensor& image, const std::string& text, float x, float y, const Rgb& color, int scale);

}  // namespace spnas

#endif  // SPNAS_DATA_IMAGE_IO_H_
