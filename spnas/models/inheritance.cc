#include "spnas/models/inheritance.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <map>
#include <regex>
#include <sstream>

#include "spnas/core/record_store.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/searchable.h"

namespace spnas {

Mutation ExpandMutation(int child_block) {
  Mutation m;
  m.mutable_expand()->set_child_block(child_block);
  return m;
}
Mutation SwapWidthMutation(int from_block, int to_block) {
  Mutation m;
  m.mutable_swap_width()->set_from_block(from_block);
  m.mutable_swap_width()->set_to_block(to_block);
  return m;
}
Mutation SwapStageMutation(int block, int from_stage, int to_stage) {
  Mutation m;
  m.mutable_swap_stage()->set_block(block);
  m.mutable_swap_stage()->set_from_stage(from_stage);
  m.mutable_swap_stage()->set_to_stage(to_stage);
  return m;
}
Mutation AddStageMutation() {
  Mutation m;
  m.mutable_add_stage();
  return m;
}
Mutation ParallelMutation(const std::vector<int>& code) {
  Mutation m;
  for (int c : code) m.mutable_parallel()->add_code(c);
  return m;
}
Mutation ReignitionMutation() {
  Mutation m;
  m.mutable_reignition();
  return m;
}

std::string InheritReport::Summary() const {
  std::ostringstream os;
  os << inherited.size() << " tensors inherited, " << reshaped.size() << " reshaped (overlap copied), " << fresh.size()
     << " new";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "\n  " << what << ": ";
    for (size_t i = 0; i < names.size() && i < 12; ++i) os << (i ? ", " : "") << names[i];
    if (names.size() > 12) os << ", ... (" << names.size() - 12 << " more)";
  };
  list("reshaped", reshaped);
  list("new", fresh);
  return os.str();
}

namespace {

// Global block index -> "layer<s>.<j>" for a serial code.
std::vector<std::string> BlockNames(const std::string& code) {
  std::vector<std::string> names;
  int stage = 1, j = 0;
  for (char c : code) {
    if (c == '-') {
      ++stage;
      j = 0;
    } else {
      names.push_back(StrCat("layer", stage, ".", j++));
    }
  }
  return names;
}

// For each child block, the parent block it comes from (-1: new), through the mutations.
StatusOr<std::vector<int>> AlignBlocks(int parent_blocks, int child_blocks, const std::vector<Mutation>& mutations) {
  std::vector<int> align(parent_blocks);
  for (int i = 0; i < parent_blocks; ++i) align[i] = i;
  for (const Mutation& m : mutations) {
    switch (m.kind_case()) {
      case Mutation::kExpand: {
        const int at = m.expand().child_block();
        if (at < 0 || at > static_cast<int>(align.size())) {
          return InvalidArgumentError("mutation '", MutationText(m), "' is out of range");
        }
        align.insert(align.begin() + at, -1);
        break;
      }
      case Mutation::kAddStage:
        align.push_back(-1);
        break;
      case Mutation::kSwapWidth:
      case Mutation::kSwapStage:
      case Mutation::kParallel:
      case Mutation::kReignition:
        break;  // swaps keep every block's global index; passes and reignition keep the blocks
      case Mutation::KIND_NOT_SET:
        return InvalidArgumentError("a mutation of no known kind (", m.ShortDebugString(),
                                    "): written by a newer spnas, or a damaged record");
    }
  }
  if (static_cast<int>(align.size()) != child_blocks) {
    return InvalidArgumentError("the mutations turn ", parent_blocks, " blocks into ", align.size(),
                                ", but the child has ", child_blocks);
  }
  return align;
}

// Canonical name of a backbone tensor: "body:<rest>" for detector (backbone.body.*) and
// classifier (top-level conv1/bn1/layerN) layouts alike; other names unchanged.
std::string Canonical(const std::string& name) {
  static const std::string kBody = "backbone.body.";
  if (name.rfind(kBody, 0) == 0) return "body:" + name.substr(kBody.size());
  if (name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 ||
      std::regex_search(name, std::regex("^(layer|connect)[0-9]+\\."))) {
    return "body:" + name;
  }
  return name;
}

// Copies the overlap of `from` into `to` (first indices along every dimension).
void CopyOverlap(const at::Tensor& from, at::Tensor& to) {
  at::Tensor dst = to, src = from;
  for (int64_t d = 0; d < to.dim(); ++d) {
    const int64_t n = std::min(to.size(d), from.size(d));
    dst = dst.narrow(d, 0, n);
    src = src.narrow(d, 0, n);
  }
  dst.copy_(src);
}

}  // namespace

StatusOr<InheritReport> InheritWeights(const StateDict& parent_state, const PluginConfig& parent_desc,
                                       const PluginConfig& child_desc, const std::vector<Mutation>& mutations,
                                       torch::nn::Module& child) {
  // Parent tensors by canonical name, with block names moved to the child's blocks.
  std::map<std::string, at::Tensor> parent;
  for (const auto& [name, tensor] : parent_state) parent[Canonical(name)] = tensor;
  std::map<std::string, std::string> block_source;  // child "layer<s>.<j>" -> parent's, or "" for new
  StatusOr<std::string> parent_code = SerialCodeOf(parent_desc);
  StatusOr<std::string> child_code = SerialCodeOf(child_desc);
  // Without recorded edits (the same network, another model with the same backbone, or a
  // network whose relation to the parent is unknown) blocks match by name.
  if (parent_code.ok() && child_code.ok() && !mutations.empty()) {
    const std::vector<std::string> parent_blocks = BlockNames(*parent_code);
    const std::vector<std::string> child_blocks = BlockNames(*child_code);
    SPNAS_ASSIGN_OR_RETURN(std::vector<int> align, AlignBlocks(static_cast<int>(parent_blocks.size()),
                                                               static_cast<int>(child_blocks.size()), mutations));
    for (size_t g = 0; g < child_blocks.size(); ++g) {
      block_source[child_blocks[g]] = align[g] < 0 ? "" : parent_blocks[align[g]];
    }
  }

  InheritReport report;
  std::map<std::string, bool> new_blocks;  // child block prefix -> has no parent
  torch::NoGradGuard no_grad;
  const StateDict own = GetStateDict(child);
  for (const auto& [name, tensor_ref] : own) {
    at::Tensor tensor = tensor_ref;
    std::string key = Canonical(name);
    std::smatch m;
    if (std::regex_search(key, m, std::regex("^body:(layer[0-9]+\\.[0-9]+)\\."))) {
      auto it = block_source.find(m[1]);
      if (it != block_source.end()) {
        if (it->second.empty()) {
          new_blocks[name.substr(0, name.size() - key.size() + m[0].length())] = true;
          report.fresh.push_back(name);
          continue;
        }
        key = "body:" + it->second + "." + key.substr(m[0].length());
      }
    }
    auto source = parent.find(key);
    // A pass's BatchNorm statistics start from the layer's own when the parent has none of
    // its own (a serial parent, or one with fewer passes or shared statistics).
    const std::string layer = LayerStatisticOfPass(key);
    if (source == parent.end() && !layer.empty()) source = parent.find(layer);
    if (source == parent.end()) {
      report.fresh.push_back(name);
      continue;
    }
    if (source->second.sizes() == tensor.sizes()) {
      tensor.copy_(source->second);
      report.inherited.push_back(name);
    } else if (source->second.dim() == tensor.dim()) {
      CopyOverlap(source->second, tensor);
      report.reshaped.push_back(name);
    } else {
      report.fresh.push_back(name);
    }
  }
  // A new block is an identity: zero the gamma (and beta) of its branch's last BatchNorm.
  for (const auto& [prefix, unused] : new_blocks) {
    for (const char* bn : {"bn3", "bn2"}) {
      auto w = own.find(prefix + bn + ".weight");
      if (w == own.end()) continue;
      w->second.zero_();
      own.at(prefix + bn + ".bias").zero_();
      break;
    }
  }
  return report;
}

}  // namespace spnas
