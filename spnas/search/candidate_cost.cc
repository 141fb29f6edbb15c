#include "spnas/search/candidate_cost.h"

#include <utility>

#include "spnas/device/device.h"
#include "spnas/models/cost.h"
#include "spnas/models/model.h"

namespace spnas {

StatusOr<std::map<std::string, double>> CandidateCosts(const PluginConfig& model_desc, int input_size,
                                                       CostsWanted wanted, const std::string& device_name) {
  SPNAS_ASSIGN_OR_RETURN(const c10::Device device, ResolveDevice(device_name));
  try {
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                           ModelRegistry().Create(model_desc.type(), model_desc.options()));
    model->to(device);
    return ModelCosts(*model, input_size, device, wanted.latency ? 5 : 0, wanted.memory);
  } catch (const std::exception& e) {
    return InvalidArgumentError("cannot build model '", model_desc.type(), "': ", ExceptionMessage(e));
  }
}

CostsWanted CostsFor(const ResourceLimits& limits) {
  return CostsWanted{limits.max_latency_ms() > 0, limits.max_memory_mb() > 0};
}

Status CheckLimits(const std::map<std::string, double>& costs, const ResourceLimits& limits) {
  const std::pair<const char*, double> checks[] = {{"params", limits.max_params()},
                                                   {"flops", limits.max_flops()},
                                                   {"latency_ms", limits.max_latency_ms()},
                                                   {"memory_mb", limits.max_memory_mb()}};
  for (const auto& [key, limit] : checks) {
    auto it = costs.find(key);
    if (limit > 0 && it != costs.end() && it->second > limit) {
      return Status(StatusCode::kOutOfRange, StrCat(key, " ", it->second, " > ", limit));
    }
  }
  return Status::Ok();
}

Status CheckModelLimits(const PluginConfig& model, const ResourceLimits& limits, int input_size,
                        const std::string& device) {
  if (limits.max_params() <= 0 && limits.max_flops() <= 0 && limits.max_latency_ms() <= 0 &&
      limits.max_memory_mb() <= 0) {
    return Status::Ok();  // nothing to measure
  }
  SPNAS_ASSIGN_OR_RETURN(auto costs, CandidateCosts(model, input_size, CostsFor(limits), device));
  return CheckLimits(costs, limits);
}

}  // namespace spnas
