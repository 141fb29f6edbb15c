#include "spnas/data/dataset.h"
#include "spnas/core/logging.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>

namespace spnas {

SPNAS_DEFINE_REGISTRY(DatasetRegistry, "dataset", Dataset);

StatusOr<std::shared_ptr<Dataset>> LoadDatasetCached(const PluginConfig& config) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::shared_ptr<Dataset>>();
  const std::string key = config.SerializeAsString();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> dataset, DatasetRegistry().Create(config.type(), config.options()));
  SPNAS_RETURN_IF_ERROR(dataset->Load());
  LOG(INFO) << "dataset " << config.type() << ": " << dataset->Statistics();
  std::shared_ptr<Dataset> shared(dataset.release());
  (*cache)[key] = shared;
  return shared;
}

std::string DetectionStatistics(const DetectionDataset& dataset, int64_t max_samples) {
  const std::vector<std::string> names = dataset.ClassNames();
  std::vector<int64_t> per_class(names.size(), 0);
  const int64_t n = std::min(dataset.Size(), max_samples);
  int64_t boxes = 0, empty = 0, min_side = INT64_MAX, max_side = 0;
  double min_box = 1e30, max_box = 0;
  for (int64_t i = 0; i < n; ++i) {
    const DetectionSample s = dataset.Get(i);
    min_side = std::min({min_side, s.image.size(1), s.image.size(2)});
    max_side = std::max({max_side, s.image.size(1), s.image.size(2)});
    const int64_t k = s.target.boxes.size(0);
    boxes += k;
    empty += k == 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t label = s.target.labels[j].item<int64_t>();
      if (label >= 0 && label < static_cast<int64_t>(per_class.size())) ++per_class[label];
      const at::Tensor b = s.target.boxes[j];
      const double side = std::sqrt(((b[2] - b[0]) * (b[3] - b[1])).item<double>());
      min_box = std::min(min_box, side);
      max_box = std::max(max_box, side);
    }
  }
  std::ostringstream os;
  os << dataset.Size() << " images"
     << (n < dataset.Size() ? " (statistics of the first " + std::to_string(n) + ")" : "") << ", " << boxes
     << " boxes, " << empty << " images without boxes, image sides " << min_side << ".." << max_side;
  if (boxes > 0) os << ", box sqrt(area) " << static_cast<int>(min_box) << ".." << static_cast<int>(max_box);
  os << "; boxes per class:";
  for (size_t c = 1; c < names.size(); ++c) os << " " << names[c] << "=" << per_class[c];
  return os.str();
}

}  // namespace spnas
