// Whether more or less of a metric is better, declared once for the whole framework: the
// searches' Pareto fronts, the callbacks' monitors and the steps' rankings all ask here.
#ifndef SPNAS_CORE_OBJECTIVES_H_
#define SPNAS_CORE_OBJECTIVES_H_

#include <string>

#include "spnas/core/registry.h"
#include "spnas/core/status.h"

namespace spnas {

enum class Direction { kMaximize, kMinimize };

// Maximised: mAP, AP*, VOC_AP*, accuracy, reignition_accuracy. Minimised: params, flops,
// latency_ms, memory_mb, train_peak_memory_mb and losses (loss*). Plus the metrics plugins
// declare (SPNAS_DECLARE_METRIC_DIRECTION). Anything else is an error naming `what` (e.g.
// "objective") and the metric.
StatusOr<Direction> MetricDirection(const std::string& metric, const std::string& what = "metric");

// For a plugin that reports a metric of its own, at static initialisation:
//   SPNAS_DECLARE_METRIC_DIRECTION("score", spnas::Direction::kMaximize);
// Declaring a known metric again with the other direction is fatal at start-up.
Status DeclareMetricDirection(const std::string& metric, Direction direction);

// `value` turned so that larger is better (negated for a minimised metric).
inline double Better(Direction direction, double value) { return direction == Direction::kMaximize ? value : -value; }

}  // namespace spnas

#define SPNAS_DECLARE_METRIC_DIRECTION(metric, direction)                \
  static const ::spnas::Registrar SPNAS_CONCAT_(spnas_metric_direction_, \
                                                __COUNTER__)(::spnas::DeclareMetricDirection(metric, direction))

#endif  // SPNAS_CORE_OBJECTIVES_H_
