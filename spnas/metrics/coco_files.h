// COCO evaluation of files: an annotation JSON and a detections JSON in the results format.
#ifndef SPNAS_METRICS_COCO_FILES_H_
#define SPNAS_METRICS_COCO_FILES_H_

#include <string>

#include "spnas/core/status.h"
#include "spnas/metrics/coco_eval.h"

namespace spnas {

StatusOr<CocoStats> EvaluateCocoFiles(const std::string& annotations, const std::string& detections);

}  // namespace spnas

#endif  // SPNAS_METRICS_COCO_FILES_H_
