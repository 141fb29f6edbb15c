// The dataset kind: detection datasets (images + boxes) and classification datasets.
#ifndef SPNAS_DATA_DATASET_H_
#define SPNAS_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "spnas/core/detection_types.h"
#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"

namespace spnas {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t Size() const = 0;
  // Class names; for detection index 0 is the background.
  virtual std::vector<std::string> ClassNames() const = 0;
  // Loads and checks what it needs (files, annotations); errors name the file and record.
  virtual Status Load() = 0;
  // Statistics printed at load: images, instances per class, size ranges.
  virtual std::string Statistics() const = 0;
};

struct DetectionSample {
  at::Tensor image;  // float [3, H, W] in [0, 1]
  Target target;     // boxes in pixels, labels 1..C-1
  int64_t image_id = 0;
  // Optional: the annotations' own areas (COCO segment areas) for the evaluation's area
  // ranges; undefined = box areas.
  at::Tensor areas;
  // Ground truth the evaluation ignores (COCO crowd regions, VOC difficult objects); may be
  // undefined.
  at::Tensor crowd_boxes;
  at::Tensor crowd_labels;
};

class DetectionDataset : public Dataset {
 public:
  virtual DetectionSample Get(int64_t index) const = 0;
  // The dataset's own category id of a contiguous label (COCO ids), for exported results.
  virtual int64_t CategoryId(int64_t label) const { return label; }
};

struct ClassificationSample {
  at::Tensor image;  // float [C, H, W] in [0, 1]
  int64_t label = 0;
};

class ClassificationDataset : public Dataset {
 public:
  virtual ClassificationSample Get(int64_t index) const = 0;
};

SPNAS_DECLARE_REGISTRY(DatasetRegistry, Dataset);

// Creates and loads the dataset of `config`, logging its statistics; datasets are loaded once
// per process and shared by everything that uses the same config.
StatusOr<std::shared_ptr<Dataset>> LoadDatasetCached(const PluginConfig& config);

// Statistics of a detection dataset from its samples' targets.
std::string DetectionStatistics(const DetectionDataset& dataset, int64_t max_samples = 2000);

}  // namespace spnas

#endif  // SPNAS_DATA_DATASET_H_
