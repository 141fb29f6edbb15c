#include "spnas/models/checkpoint.h"

#include <torch/serialize.h>

#include "spnas/core/files.h"
#include "spnas/models/torch_unpickler.h"

namespace spnas {

Status SaveWeights(const std::string& path, const StateDict& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : state) dict.insert(name, tensor.detach().cpu().contiguous());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return WriteFileAtomic(path, std::string(bytes.begin(), bytes.end()));
}

StatusOr<StateDict> LoadWeights(const std::string& path) {
  SPNAS_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  try {
    const c10::IValue value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    if (!value.isGenericDict()) return ReadTorchCheckpoint(path);
    StateDict state;
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor()) return ReadTorchCheckpoint(path);
      state[entry.key().toStringRef()] = entry.value().toTensor();
    }
    return state;
  } catch (const c10::Error& e) {
    // Not a plain dict in the zip format: a file of Python's torch.save.
    return ReadTorchCheckpoint(path);
  }
}

}  // namespace spnas
