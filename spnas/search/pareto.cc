#include "spnas/search/pareto.h"

#include <algorithm>

#include "spnas/core/objectives.h"

namespace spnas {

StatusOr<std::vector<Objective>> ParseObjectives(const std::vector<std::string>& keys) {
  std::vector<Objective> objectives;
  for (const std::string& key : keys) {
    SPNAS_ASSIGN_OR_RETURN(Direction direction, MetricDirection(key, "objective"));
    objectives.push_back({key, direction == Direction::kMaximize});
  }
  if (objectives.empty()) return InvalidArgumentError("objective_keys is empty");
  return objectives;
}

StatusOr<std::vector<Objective>> Objectives(const google::protobuf::RepeatedPtrField<std::string>& keys) {
  return ParseObjectives(std::vector<std::string>(keys.begin(), keys.end()));
}

bool Dominates(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
               const std::vector<Objective>& objectives) {
  bool better = false;
  for (const Objective& o : objectives) {
    const double x = a.at(o.key), y = b.at(o.key);
    if (o.maximize ? x < y : x > y) return false;
    better |= o.maximize ? x > y : x < y;
  }
  return better;
}

std::optional<std::map<std::string, double>> ObjectiveValues(const Trial& trial,
                                                             const std::vector<Objective>& objectives) {
  if (trial.record.status() != FINISHED) return std::nullopt;
  std::map<std::string, double> values;
  for (const Objective& o : objectives) {
    auto it = trial.record.metrics().find(o.key);
    if (it == trial.record.metrics().end()) return std::nullopt;
    values[o.key] = it->second;
  }
  return values;
}

std::vector<int> ParetoFront(const std::vector<Trial>& trials, const std::vector<Objective>& objectives) {
  std::vector<int> candidates;
  std::vector<std::map<std::string, double>> values(trials.size());
  for (size_t i = 0; i < trials.size(); ++i) {
    auto v = ObjectiveValues(trials[i], objectives);
    if (!v) continue;
    values[i] = std::move(*v);
    candidates.push_back(static_cast<int>(i));
  }
  std::vector<int> front;
  for (int i : candidates) {
    bool dominated = false;
    for (int j : candidates) dominated |= j != i && Dominates(values[j], values[i], objectives);
    if (!dominated) front.push_back(i);
  }
  const Objective& first = objectives.front();
  std::stable_sort(front.begin(), front.end(), [&](int a, int b) {
    return first.maximize ? values[a].at(first.key) > values[b].at(first.key)
                          : values[a].at(first.key) < values[b].at(first.key);
  });
  return front;
}

std::vector<int> ParetoSearchAlgorithm::SelectOutputs(const std::vector<Trial>& history) const {
  std::vector<int> ids;
  for (int i : ParetoFront(history, objectives_)) ids.push_back(history[i].record.id());
  return ids;
}

}  // namespace spnas
