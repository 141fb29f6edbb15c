#include "spnas/models/checkpoint.h"

#include <torch/serialize.h>

#include "spnas/core/files.h"

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
    if (!value.isGenericDict()) return InvalidArgumentError("'", path, "' does not hold a dict of tensors");
    StateDict state;
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor()) {
        return InvalidArgumentError("'", path, "' holds a dict that is not name -> tensor");
      }
      state[entry.key().toStringRef()] = entry.value().toTensor();
    }
    return state;
  } catch (const c10::Error& e) {
    return InvalidArgumentError("'", path, "' is not a weights file spnas can read: ", e.what_without_backtrace());
  }
}

}  // namespace spnas
