#include "spnas/models/state_dict.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <set>
#include <sstream>

namespace spnas {

StateDict GetStateDict(const torch::nn::Module& module) {
  StateDict state;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) state[item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) state[item.key()] = item.value();
  return state;
}

std::string LoadReport::Summary() const {
  std::ostringstream os;
  os << loaded.size() << " tensors loaded, " << missing.size() << " missing, " << unexpected.size() << " unexpected, "
     << mismatched.size() << " of another shape";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "\n  " << what << ": ";
    for (size_t i = 0; i < names.size() && i < 20; ++i) os << (i ? ", " : "") << names[i];
    if (names.size() > 20) os << ", ... (" << names.size() - 20 << " more)";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("other shape", mismatched);
  return os.str();
}

std::string LayerStatisticOfPass(const std::string& name) {
  const size_t pass = name.rfind("_pass");
  const size_t digits = pass == std::string::npos ? pass : pass + 5;
  if (digits == std::string::npos || digits == name.size() ||
      name.find_first_not_of("0123456789", digits) != std::string::npos) {
    return "";
  }
  return name.substr(0, pass);
}

LoadReport LoadStateDict(torch::nn::Module& module, const StateDict& state) {
  LoadReport report;
  StateDict own = GetStateDict(module);
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : own) {
    auto it = state.find(name);
    // From the layer's statistics, the model computes what it computed.
    const std::string layer = LayerStatisticOfPass(name);
    if (it == state.end() && !layer.empty()) it = state.find(layer);
    if (it == state.end()) {
      report.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      std::ostringstream os;
      os << name << ": " << it->second.sizes() << " vs " << tensor.sizes();
      report.mismatched.push_back(os.str());
      continue;
    }
    tensor.copy_(it->second);
    report.loaded.push_back(name);
  }
  for (const auto& [name, tensor] : state) {
    if (!own.count(name)) report.unexpected.push_back(name);
  }
  return report;
}

}  // namespace spnas
