// Costs of a model description before training: parameters, FLOPs (backbone + neck for a
// detector) and, when asked, latency and the memory of a training step. Used to reject
// candidates over resource limits.
#ifndef SPNAS_SEARCH_CANDIDATE_COST_H_
#define SPNAS_SEARCH_CANDIDATE_COST_H_

#include <map>
#include <string>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"
#include "spnas/search/search_options.pb.h"

namespace spnas {

struct CostsWanted {
  bool latency = false;
  bool memory = false;
};
StatusOr<std::map<std::string, double>> CandidateCosts(const PluginConfig& model, int input_size, CostsWanted wanted,
                                                       const std::string& device = "cpu");
// The costs that `limits` bound beyond params and FLOPs (which are always measured).
CostsWanted CostsFor(const ResourceLimits& limits);
// OK when `costs` are within the limits, else OutOfRange naming the limit ("params 101 > 100").
Status CheckLimits(const std::map<std::string, double>& costs, const ResourceLimits& limits);
// CheckLimits of `model`'s costs, measured only when `limits` bound anything: OutOfRange when
// over a limit, another error when the costs cannot be measured.
Status CheckModelLimits(const PluginConfig& model, const ResourceLimits& limits, int input_size,
                        const std::string& device);

}  // namespace spnas

#endif  // SPNAS_SEARCH_CANDIDATE_COST_H_
