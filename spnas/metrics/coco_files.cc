#include "spnas/metrics/coco_files.h"

#include <simdjson.h>

#include <map>
#include <set>

#include "spnas/data/coco.h"

namespace spnas {

StatusOr<CocoStats> EvaluateCocoFiles(const std::string& annotations, const std::string& detections) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto error = parser.load(annotations).get(doc)) {
    return InvalidArgumentError("'", annotations, "' is not readable JSON: ", simdjson::error_message(error));
  }
  simdjson::dom::array images, anns;
  if (doc["images"].get_array().get(images) || doc["annotations"].get_array().get(anns)) {
    return InvalidArgumentError("'", annotations, "' needs the arrays \"images\" and \"annotations\"");
  }
  std::map<int64_t, std::vector<CocoGt>> gts;
  std::map<int64_t, std::vector<CocoDet>> dets;
  for (simdjson::dom::element im : images) {
    int64_t id;
    if (im["id"].get_int64().get(id)) return InvalidArgumentError("'", annotations, "': an image lacks \"id\"");
    gts[id];
    dets[id];
  }
  for (simdjson::dom::element a : anns) {
    CocoGt g;
    int64_t image_id, crowd = 0, id = -1;
    simdjson::dom::array bbox;
    if (a["id"].get_int64().get(id)) id = -1;
    if (a["image_id"].get_int64().get(image_id) || a["category_id"].get_int64().get(g.category) ||
        a["bbox"].get_array().get(bbox)) {
      return InvalidArgumentError("'", annotations, "': annotation ", id, " lacks image_id, category_id or bbox");
    }
    int k = 0;
    for (simdjson::dom::element v : bbox) {
      if (k < 4 && v.get_double().get(g.bbox[k])) k = 99;
      ++k;
    }
    if (k != 4) return InvalidArgumentError("'", annotations, "': annotation ", id, " bbox must be 4 numbers");
    if (a["area"].get_double().get(g.area)) g.area = g.bbox[2] * g.bbox[3];
    if (a["iscrowd"].get_int64().get(crowd)) crowd = 0;
    g.iscrowd = crowd != 0;
    if (!gts.count(image_id)) {
      return InvalidArgumentError("'", annotations, "': annotation ", id, " refers to image ", image_id,
                                  ", which is not in \"images\"");
    }
    gts[image_id].push_back(g);
  }
  SPNAS_ASSIGN_OR_RETURN(std::vector<CocoResult> results, ReadCocoResults(detections));
  for (const CocoResult& r : results) {
    auto it = dets.find(r.image_id);
    if (it == dets.end()) {
      return InvalidArgumentError("'", detections, "': a detection refers to image ", r.image_id,
                                  ", which is not in the annotations");
    }
    it->second.push_back({r.category_id, r.bbox, r.score});
  }
  CocoEvaluator evaluator;
  for (auto& [id, g] : gts) evaluator.AddImage(id, std::move(g), std::move(dets[id]));
  return evaluator.Evaluate();
}

}  // namespace spnas
