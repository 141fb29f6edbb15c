// The evaluation loop of a detector, shared by the trainers and `spnas eval`.
#ifndef SPNAS_METRICS_EVALUATE_H_
#define SPNAS_METRICS_EVALUATE_H_

#include <functional>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "spnas/core/detection_types.h"
#include "spnas/data/loader.h"
#include "spnas/metrics/metric.h"

namespace spnas {

// Detections of a batch of images, one entry per image.
using DetectFunction = std::function<std::vector<Detections>(const std::vector<at::Tensor>&)>;

// Runs `detect` (without gradients) over one epoch of `loader` and gives each image's
// detections, moved to the CPU, to every metric and to `each` when it is set.
void EvaluateDetector(const DetectionLoader& loader, const DetectFunction& detect,
                      const std::vector<std::unique_ptr<DetectionMetric>>& metrics,
                      const std::function<void(const DetectionSample&, const Detections&)>& each = nullptr);

}  // namespace spnas

#endif  // SPNAS_METRICS_EVALUATE_H_
