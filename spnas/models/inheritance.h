// Weight inheritance (network morphism, docs/sp_nas.md, weight inheritance): a child network made from its parent by
// mutations starts from the parent's weights. Backbone blocks are matched through the edits
// (an expanded block shifts the later ones); a tensor of the same shape is copied, a reshaped
// one gets its overlapping slice, and a new residual block starts as an identity (the last
// BatchNorm of its branch has gamma 0), so the child computes what the parent computed.
#ifndef SPNAS_MODELS_INHERITANCE_H_
#define SPNAS_MODELS_INHERITANCE_H_

#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/records.pb.h"
#include "spnas/core/status.h"
#include "spnas/models/state_dict.h"

namespace spnas {

// The mutations SpNasS and SpNasP record (records.proto).
Mutation ExpandMutation(int child_block);  // a new block at this global index of the child
Mutation SwapWidthMutation(int from_block, int to_block);
Mutation SwapStageMutation(int block, int from_stage, int to_stage);
Mutation AddStageMutation();
Mutation ParallelMutation(const std::vector<int>& code);
Mutation ReignitionMutation();

struct InheritReport {
  std::vector<std::string> inherited;  // copied unchanged
  std::vector<std::string> reshaped;   // overlapping slice copied
  std::vector<std::string> fresh;      // new (initialised; identity for new blocks)
  std::string Summary() const;
};

// Initialises `child` (built from child_desc) from `parent_state` (weights of parent_desc).
// `mutations` are those that made the child from the parent (empty: same architecture,
// another model with the same backbone, e.g. a classifier and a detector, or a network whose
// edits are not known; tensors then match by name).
StatusOr<InheritReport> InheritWeights(const StateDict& parent_state, const PluginConfig& parent_desc,
                                       const PluginConfig& child_desc, const std::vector<Mutation>& mutations,
                                       torch::nn::Module& child);

}  // namespace spnas

#endif  // SPNAS_MODELS_INHERITANCE_H_
