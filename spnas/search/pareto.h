// Pareto fronts over objectives with directions, and resource-limit checks.
#ifndef SPNAS_SEARCH_PARETO_H_
#define SPNAS_SEARCH_PARETO_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spnas/core/record_store.h"
#include "spnas/core/status.h"
#include "spnas/search/search_algorithm.h"
#include "spnas/search/search_options.pb.h"

namespace spnas {

struct Objective {
  std::string key;
  bool maximize;
};

// "mAP", "AP50", ..., "accuracy" are maximised; "params", "flops", "latency_ms", "memory_mb"
// minimised; anything else is an error naming the key.
StatusOr<std::vector<Objective>> ParseObjectives(const std::vector<std::string>& keys);

// The objectives named by a search's objective_keys.
StatusOr<std::vector<Objective>> Objectives(const google::protobuf::RepeatedPtrField<std::string>& keys);

// a dominates b: no worse in every objective and better in one.
bool Dominates(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
               const std::vector<Objective>& objectives);

// The objectives' values of a finished trial that has them all; nullopt otherwise.
std::optional<std::map<std::string, double>> ObjectiveValues(const Trial& trial,
                                                             const std::vector<Objective>& objectives);

// Indices of the finished trials that have every objective and that no other such trial dominates,
// best first by the first objective.
std::vector<int> ParetoFront(const std::vector<Trial>& trials, const std::vector<Objective>& objectives);

// A search whose budget is its max_sample and whose outputs are the Pareto front of its
// objectives (SpNasS, SpNasP). Init sets objectives_ and max_sample_.
class ParetoSearchAlgorithm : public SearchAlgorithm {
 public:
  int Budget() const override { return max_sample_; }
  std::vector<int> SelectOutputs(const std::vector<Trial>& history) const override;

 protected:
  std::vector<Objective> objectives_;
  int max_sample_ = 0;
};

}  // namespace spnas

#endif  // SPNAS_SEARCH_PARETO_H_
