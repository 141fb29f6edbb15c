#include "spnas/core/objectives.h"

#include <map>
#include <mutex>
#include <optional>

namespace spnas {
namespace {

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::optional<Direction> BuiltInDirection(const std::string& metric) {
  if (metric == "mAP" || StartsWith(metric, "AP") || StartsWith(metric, "VOC_AP") || metric == "accuracy" ||
      metric == "reignition_accuracy") {
    return Direction::kMaximize;
  }
  if (metric == "params" || metric == "flops" || metric == "latency_ms" || metric == "memory_mb" ||
      metric == "train_peak_memory_mb" || StartsWith(metric, "loss")) {
    return Direction::kMinimize;
  }
  return std::nullopt;
}

// Leaked: declarations run during static initialisation, in any order.
std::map<std::string, Direction>& Declared() {
  static auto* declared = new std::map<std::string, Direction>();
  return *declared;
}

std::mutex& DeclaredMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}

}  // namespace

StatusOr<Direction> MetricDirection(const std::string& metric, const std::string& what) {
  if (std::optional<Direction> direction = BuiltInDirection(metric)) return *direction;
  {
    std::lock_guard<std::mutex> lock(DeclaredMutex());
    auto it = Declared().find(metric);
    if (it != Declared().end()) return it->second;
  }
  return InvalidArgumentError(what, " '", metric, "' has no known direction; use mAP, AP50, AP75, APs, APm, APl, ",
                              "VOC_AP50, accuracy (maximised) or params, flops, latency_ms, memory_mb, loss ",
                              "(minimised), or a metric a plugin declares");
}

Status DeclareMetricDirection(const std::string& metric, Direction direction) {
  std::optional<Direction> known = BuiltInDirection(metric);
  std::lock_guard<std::mutex> lock(DeclaredMutex());
  auto it = Declared().find(metric);
  if (it != Declared().end()) known = it->second;
  if (known.has_value() && *known != direction) {
    return AlreadyExistsError("metric '", metric, "' is declared both maximised and minimised");
  }
  Declared()[metric] = direction;
  return Status::Ok();
}

}  // namespace spnas
