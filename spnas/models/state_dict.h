// Named tensors of a module (parameters and buffers, as PyTorch's state_dict), and loading
// them back by name with a report of what matched.
#ifndef SPNAS_MODELS_STATE_DICT_H_
#define SPNAS_MODELS_STATE_DICT_H_

#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

namespace spnas {

using StateDict = std::map<std::string, at::Tensor>;

StateDict GetStateDict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> loaded;      // copied
  std::vector<std::string> missing;     // in the module, not in the state
  std::vector<std::string> unexpected;  // in the state, not in the module
  std::vector<std::string> mismatched;  // same name, other shape: "name: [a, b] vs [c, d]"
  std::string Summary() const;          // counts, and the names of what did not load
};

// Copies each tensor whose name and shape match; everything else is reported.
LoadReport LoadStateDict(torch::nn::Module& module, const StateDict& state);

}  // namespace spnas

#endif  // SPNAS_MODELS_STATE_DICT_H_
