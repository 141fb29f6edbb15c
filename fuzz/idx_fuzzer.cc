// Fuzzes the IDX readers (Fashion-MNIST images and labels, gzip-compressed or not).
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/data/idx.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      spnas::fuzz::WriteScratchFile("data-idx-ubyte.gz", std::string_view(reinterpret_cast<const char*>(data), size));
  auto images = spnas::ReadIdxImages(path);
  if (images.ok() && !images->pixels.empty()) (void)images->pixels.back();
  auto labels = spnas::ReadIdxLabels(path);
  if (labels.ok() && !labels->empty()) (void)labels->back();
  return 0;
}
