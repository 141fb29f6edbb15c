#include "spnas/metrics/evaluate.h"

#include <ATen/core/grad_mode.h>

namespace spnas {

void EvaluateDetector(const DetectionLoader& loader, const DetectFunction& detect,
                      const std::vector<std::unique_ptr<DetectionMetric>>& metrics,
                      const std::function<void(const DetectionSample&, const Detections&)>& each) {
  at::NoGradGuard no_grad;
  auto epoch = loader.Epoch(0);
  DetectionBatch batch;
  while (epoch->Next(&batch)) {
    const std::vector<Detections> detections = detect(batch.images);
    for (size_t i = 0; i < batch.samples.size(); ++i) {
      const Detections on_cpu = detections[i].To(c10::kCPU);
      for (const auto& metric : metrics) metric->Update(batch.samples[i], on_cpu);
      if (each) each(batch.samples[i], on_cpu);
    }
  }
}

}  // namespace spnas
