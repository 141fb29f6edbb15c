// COCO bbox evaluation with the semantics of pycocotools' COCOeval (iouType "bbox",
// useCats 1): IoU thresholds .50:.05:.95, 101 recall points, areas all/small/medium/large,
// maxDets 1/10/100, crowd ground truth ignored (matched by intersection over detection area),
// averages over the categories that have ground truth.
#ifndef SPNAS_METRICS_COCO_EVAL_H_
#define SPNAS_METRICS_COCO_EVAL_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace spnas {

// Boxes are (x, y, width, height) as in COCO files.
struct CocoGt {
  int64_t category = 0;
  std::array<double, 4> bbox{};
  double area = 0;  // the annotation's area (COCO: the segment's), used for the area ranges
  bool iscrowd = false;
};

struct CocoDet {
  int64_t category = 0;
  std::array<double, 4> bbox{};
  double score = 0;
};

// The 12 numbers COCOeval.summarize() prints, in its order.
struct CocoStats {
  std::array<double, 12> stats{};
  static const char* const kNames[12];
  // mAP = stats[0] * 100, AP50, AP75, APs, APm, APl (also x 100), as spnas reports them.
  std::map<std::string, double> Metrics() const;
  std::string Summary() const;  // the 12 lines of pycocotools' summarize()
};

class CocoEvaluator {
 public:
  // Ground truth and detections of one image; call once per image (images with neither count).
  void AddImage(int64_t image_id, std::vector<CocoGt> gts, std::vector<CocoDet> dets);
  CocoStats Evaluate() const;
  size_t num_images() const { return images_.size(); }

 private:
  struct Image {
    int64_t id;
    std::vector<CocoGt> gts;
    std::vector<CocoDet> dets;
  };
  std::vector<Image> images_;
};

}  // namespace spnas

#endif  // SPNAS_METRICS_COCO_EVAL_H_
