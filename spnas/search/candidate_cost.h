// Costs of a model description before training: parameters, FLOPs (backbone + neck for a
// detector) and, when asked, latency. Used to reject candidates over resource limits.
#ifndef SPNAS_SEARCH_CANDIDATE_COST_H_
#define SPNAS_SEARCH_CANDIDATE_COST_H_

#include <map>
#include <string>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"

namespace spnas {

StatusOr<std::map<std::string, double>> CandidateCosts(const PluginConfig& model, int input_size, bool latency,
                                                       const std::string& device = "cpu");

}  // namespace spnas

#endif  // SPNAS_SEARCH_CANDIDATE_COST_H_
