// Pascal VOC average precision at IoU 0.5: the area under the precision envelope (VOC2010+),
// or the 11-point interpolation (VOC2007). Boxes are (x1, y1, x2, y2), continuous coordinates.
#ifndef SPNAS_METRICS_VOC_AP_H_
#define SPNAS_METRICS_VOC_AP_H_

#include <array>
#include <cstdint>
#include <map>
#include <vector>

namespace spnas {

struct VocGt {
  int64_t label = 0;
  std::array<double, 4> box{};
  bool difficult = false;  // neither a hit nor a miss
};

struct VocDet {
  int64_t label = 0;
  std::array<double, 4> box{};
  double score = 0;
};

class VocEvaluator {
 public:
  explicit VocEvaluator(double iou_threshold = 0.5, bool eleven_point = false)
      : iou_threshold_(iou_threshold), eleven_point_(eleven_point) {}
  void AddImage(std::vector<VocGt> gts, std::vector<VocDet> dets);
  // AP per label with ground truth; mean over them in "mAP" (0..1).
  std::map<int64_t, double> PerClassAp() const;
  double MeanAp() const;

 private:
  struct Image {
    std::vector<VocGt> gts;
    std::vector<VocDet> dets;
  };
  double iou_threshold_;
  bool eleven_point_;
  std::vector<Image> images_;
};

}  // namespace spnas

#endif  // SPNAS_METRICS_VOC_AP_H_
