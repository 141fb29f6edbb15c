// Fuzzes image decoding as every dataset calls it (ReadImage: PNG, JPEG, BMP, GIF, ...).
#include <cstdint>

#include <stb/stb_image.h>

#include "fuzz/fuzz_input.h"
#include "spnas/data/image_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      spnas::fuzz::WriteScratchFile("image.img", std::string_view(reinterpret_cast<const char*>(data), size));
  // A valid header of a large image (4 to 64 megapixels) decodes correctly but takes longer
  // than the 1 s a fuzz input may; larger ones are refused by ReadImage before decoding and
  // stay in.
  int width = 0, height = 0, channels = 0;
  if (stbi_info(path.c_str(), &width, &height, &channels)) {
    const int64_t pixels = int64_t{width} * height;
    if (pixels > (int64_t{4} << 20) && pixels <= spnas::kMaxImagePixels) return 0;
  }
  spnas::StatusOr<at::Tensor> image = spnas::ReadImage(path);
  if (image.ok()) (void)image->sum();
  return 0;
}
