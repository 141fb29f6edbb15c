#include "spnas/search/pareto.h"

#include <algorithm>

namespace spnas {

StatusOr<std::vector<Objective>> ParseObjectives(const std::vector<std::string>& keys) {
  std::vector<Objective> objectives;
  for (const std::string& key : keys) {
    if (key == "mAP" || key.rfind("AP", 0) == 0 || key.rfind("VOC_AP", 0) == 0 || key == "accuracy" ||
        key == "reignition_accuracy") {
      objectives.push_back({key, true});
    } else if (key == "params" || key == "flops" || key == "latency_ms" || key == "memory_mb") {
      objectives.push_back({key, false});
    } else {
      return InvalidArgumentError("objective '", key, "' has no known direction; use mAP, AP50, AP75, APs, APm, APl, "
                                  "accuracy (maximised) or params, flops, latency_ms (minimised)");
    }
  }
  if (objectives.empty()) return InvalidArgumentError("objective_keys is empty");
  return objectives;
}

StatusOr<std::vector<Objective>> ObjectivesOrDefault(const google::protobuf::RepeatedPtrField<std::string>& keys) {
  if (keys.empty()) return ParseObjectives({"mAP", "params"});
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

std::vector<int> ParetoFront(const std::vector<Trial>& trials, const std::vector<Objective>& objectives) {
  std::vector<int> candidates;
  std::vector<std::map<std::string, double>> values(trials.size());
  for (size_t i = 0; i < trials.size(); ++i) {
    if (trials[i].record.status() != FINISHED) continue;
    bool complete = true;
    for (const Objective& o : objectives) {
      auto it = trials[i].record.metrics().find(o.key);
      if (it == trials[i].record.metrics().end()) {
        complete = false;
        break;
      }
      values[i][o.key] = it->second;
    }
    if (complete) candidates.push_back(static_cast<int>(i));
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

std::string CheckLimits(const std::map<std::string, double>& costs, const ResourceLimits& limits) {
  auto over = [&](const char* key, double limit) -> std::string {
    auto it = costs.find(key);
    if (limit <= 0 || it == costs.end() || it->second <= limit) return "";
    return StrCat(key, " ", it->second, " > ", limit);
  };
  for (const std::string& s : {over("params", limits.max_params()), over("flops", limits.max_flops()),
                               over("latency_ms", limits.max_latency_ms())}) {
    if (!s.empty()) return s;
  }
  return "";
}

}  // namespace spnas
