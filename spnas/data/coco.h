// COCO-format detection datasets: reading (CocoDetection) and writing (ExportCoco).
#ifndef SPNAS_DATA_COCO_H_
#define SPNAS_DATA_COCO_H_

#include <string>
#include <vector>

#include "spnas/core/detection_types.h"
#include "spnas/data/dataset.h"

namespace spnas {

// Writes `dataset` as <dir>/annotations.json + <dir>/images/<id>.png (the first `limit`
// images; 0 = all).
Status ExportCoco(const DetectionDataset& dataset, const std::string& dir, int64_t limit = 0);

// One detection in the COCO results format.
struct CocoResult {
  int64_t image_id;
  int64_t category_id;
  std::array<double, 4> bbox;  // x, y, w, h
  double score;
};
// [{"image_id", "category_id", "bbox", "score"}, ...]
std::string CocoResultsJson(const std::vector<CocoResult>& results);
StatusOr<std::vector<CocoResult>> ReadCocoResults(const std::string& path);

}  // namespace spnas

#endif  // SPNAS_DATA_COCO_H_
