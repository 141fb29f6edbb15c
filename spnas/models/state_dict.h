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

// Copies each tensor whose name and shape match; everything else is reported. Statistics per
// pass absent from `state` (saved with one set per layer) load from the layer's.
LoadReport LoadStateDict(torch::nn::Module& module, const StateDict& state);

// The layer statistic a BatchNorm statistic per pass (BatchNorm2dImpl::AddPassStatistics)
// starts from: "bn1.running_mean" for "bn1.running_mean_pass2"; "" for any other name.
std::string LayerStatisticOfPass(const std::string& name);

}  // namespace spnas

#endif  // SPNAS_MODELS_STATE_DICT_H_
