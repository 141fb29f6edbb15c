// Fuzzes the torch.save reader (zip and legacy pickle formats) as pretrained_model_file,
// `convert` and `--resume` call it.
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/models/checkpoint.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      spnas::fuzz::WriteScratchFile("weights.pth", std::string_view(reinterpret_cast<const char*>(data), size));
  spnas::StatusOr<spnas::StateDict> state = spnas::LoadWeights(path);
  if (state.ok()) {
    for (const auto& [name, tensor] : *state) (void)tensor.sum();  // every tensor is readable
  }
  return 0;
}
