// The metric plugins: COCO and VOC.
#include <ATen/ATen.h>

#include "spnas/metrics/coco_eval.h"
#include "spnas/metrics/metric.h"
#include "spnas/metrics/metric_options.pb.h"
#include "spnas/metrics/voc_ap.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(MetricRegistry, "metric", DetectionMetric);

namespace {

std::vector<std::array<double, 4>> Rows(const at::Tensor& boxes) {
  std::vector<std::array<double, 4>> rows;
  if (!boxes.defined() || boxes.numel() == 0) return rows;
  const at::Tensor b = boxes.to(at::kDouble).contiguous();
  const double* p = b.data_ptr<double>();
  for (int64_t i = 0; i < b.size(0); ++i) rows.push_back({p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]});
  return rows;
}

std::vector<int64_t> Labels(const at::Tensor& labels) {
  if (!labels.defined() || labels.numel() == 0) return {};
  const at::Tensor l = labels.to(at::kLong).contiguous();
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

std::array<double, 4> Xywh(const std::array<double, 4>& b) { return {b[0], b[1], b[2] - b[0], b[3] - b[1]}; }

class COCO : public DetectionMetric {
 public:
  using Options = CocoMetricOptions;
  explicit COCO(const Options&) {}

  void Update(const DetectionSample& sample, const Detections& detections) override {
    std::vector<CocoGt> gts;
    const auto boxes = Rows(sample.target.boxes);
    const auto labels = Labels(sample.target.labels);
    std::vector<double> areas;
    if (sample.areas.defined() && sample.areas.numel() > 0) {
      const at::Tensor a = sample.areas.to(at::kDouble).contiguous();
      areas.assign(a.data_ptr<double>(), a.data_ptr<double>() + a.numel());
    }
    for (size_t i = 0; i < boxes.size(); ++i) {
      const auto b = Xywh(boxes[i]);
      gts.push_back({labels[i], b, areas.empty() ? b[2] * b[3] : areas[i], false});
    }
    const auto crowd = Rows(sample.crowd_boxes);
    const auto crowd_labels = Labels(sample.crowd_labels);
    for (size_t i = 0; i < crowd.size(); ++i) {
      const auto b = Xywh(crowd[i]);
      gts.push_back({crowd_labels[i], b, b[2] * b[3], true});
    }
    std::vector<CocoDet> dets;
    const auto det_boxes = Rows(detections.boxes);
    const auto det_labels = Labels(detections.labels);
    const at::Tensor scores = detections.scores.to(at::kDouble).contiguous();
    for (size_t i = 0; i < det_boxes.size(); ++i) {
      dets.push_back({det_labels[i], Xywh(det_boxes[i]), scores.data_ptr<double>()[i]});
    }
    evaluator_.AddImage(sample.image_id, std::move(gts), std::move(dets));
  }

  std::map<std::string, double> Compute() const override { return evaluator_.Evaluate().Metrics(); }
  std::string Summary() const override { return evaluator_.Evaluate().Summary(); }

 private:
  CocoEvaluator evaluator_;
};

class VOC : public DetectionMetric {
 public:
  using Options = VocMetricOptions;
  explicit VOC(const Options& options)
      : options_(options), evaluator_(options.iou_threshold(), options.eleven_point()) {}
  static void SetDefaults(Options* o) {
    if (!o->has_iou_threshold()) o->set_iou_threshold(0.5f);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.iou_threshold() <= 0 || o.iou_threshold() >= 1) {
      return InvalidArgumentError("iou_threshold must be in (0, 1)");
    }
    return Status::Ok();
  }

  void Update(const DetectionSample& sample, const Detections& detections) override {
    std::vector<VocGt> gts;
    const auto boxes = Rows(sample.target.boxes);
    const auto labels = Labels(sample.target.labels);
    for (size_t i = 0; i < boxes.size(); ++i) gts.push_back({labels[i], boxes[i], false});
    const auto hard = Rows(sample.crowd_boxes);
    const auto hard_labels = Labels(sample.crowd_labels);
    for (size_t i = 0; i < hard.size(); ++i) gts.push_back({hard_labels[i], hard[i], true});
    std::vector<VocDet> dets;
    const auto det_boxes = Rows(detections.boxes);
    const auto det_labels = Labels(detections.labels);
    const at::Tensor scores = detections.scores.to(at::kDouble).contiguous();
    for (size_t i = 0; i < det_boxes.size(); ++i)
      dets.push_back({det_labels[i], det_boxes[i], scores.data_ptr<double>()[i]});
    evaluator_.AddImage(std::move(gts), std::move(dets));
  }

  std::map<std::string, double> Compute() const override {
    const int t = static_cast<int>(options_.iou_threshold() * 100 + 0.5);
    return {{"VOC_AP" + std::to_string(t), evaluator_.MeanAp() * 100}};
  }

 private:
  Options options_;
  VocEvaluator evaluator_;
};

SPNAS_REGISTER_PLUGIN(MetricRegistry, COCO);
SPNAS_REGISTER_PLUGIN(MetricRegistry, VOC);

}  // namespace
}  // namespace spnas
