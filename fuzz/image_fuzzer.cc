// Fuzzes image decoding as every dataset calls it (ReadImage: PNG, JPEG, BMP, GIF, ...).
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/data/image_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      spnas::fuzz::WriteScratchFile("image.img", std::string_view(reinterpret_cast<const char*>(data), size));
  spnas::StatusOr<at::Tensor> image = spnas::ReadImage(path);
  if (image.ok()) (void)image->sum();
  return 0;
}
