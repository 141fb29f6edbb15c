#include "spnas/search/candidate_cost.h"

#include <ATen/ATen.h>

#include "spnas/device/device.h"
#include "spnas/models/cost.h"
#include "spnas/models/model.h"

namespace spnas {

StatusOr<std::map<std::string, double>> CandidateCosts(const PluginConfig& model_desc, int input_size, bool latency,
                                                       const std::string& device_name) {
  SPNAS_ASSIGN_OR_RETURN(const c10::Device device, ResolveDevice(device_name));
  try {
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ModelRegistry().Create(model_desc.type(), model_desc.options()));
    model->to(device);
    model->eval();
    const auto on_device = at::TensorOptions().device(device);
    std::map<std::string, double> costs;
    costs["params"] = static_cast<double>(CountParameters(*model));
    if (auto* detector = dynamic_cast<Detector*>(model.get())) {
      const at::Tensor batch = at::zeros({1, 3, input_size, input_size}, on_device);
      costs["flops"] = CountMultiplyAdds([&] { detector->Features(batch); });
      if (latency) {
        const at::Tensor image = at::zeros({3, input_size, input_size}, on_device);
        costs["latency_ms"] = MeasureLatencyMs([&] { detector->Forward({image}); }, device, 5, 1);
      }
    } else if (auto* classifier = dynamic_cast<Classifier*>(model.get())) {
      const at::Tensor batch = at::zeros({1, 3, input_size, input_size}, on_device);
      costs["flops"] = CountMultiplyAdds([&] { classifier->Forward(batch); });
      if (latency) costs["latency_ms"] = MeasureLatencyMs([&] { classifier->Forward(batch); }, device, 5, 1);
    }
    return costs;
  } catch (const std::exception& e) {
    return InvalidArgumentError("cannot build model '", model_desc.type(), "': ", ExceptionMessage(e));
  }
}

}  // namespace spnas
