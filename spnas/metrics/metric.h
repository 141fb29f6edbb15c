// The metric kind: detection metrics accumulated over a dataset's images.
#ifndef SPNAS_METRICS_METRIC_H_
#define SPNAS_METRICS_METRIC_H_

#include <map>
#include <string>

#include "spnas/core/detection_types.h"
#include "spnas/core/registry.h"
#include "spnas/data/dataset.h"

namespace spnas {

class DetectionMetric {
 public:
  virtual ~DetectionMetric() = default;
  // One image: its ground truth (as the dataset gives it) and the detector's output.
  virtual void Update(const DetectionSample& sample, const Detections& detections) = 0;
  // Metric name -> value, percentages for AP figures.
  virtual std::map<std::string, double> Compute() const = 0;
  // A human-readable summary (COCO: pycocotools' 12 lines); may be empty.
  virtual std::string Summary() const { return ""; }
};

SPNAS_DECLARE_REGISTRY(MetricRegistry, DetectionMetric);

}  // namespace spnas

#endif  // SPNAS_METRICS_METRIC_H_
