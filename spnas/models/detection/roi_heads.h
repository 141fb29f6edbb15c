// MultiScaleRoIAlign and the box branch of torchvision's RoIHeads.
#ifndef SPNAS_MODELS_DETECTION_ROI_HEADS_H_
#define SPNAS_MODELS_DETECTION_ROI_HEADS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/modules/linear.h>

#include "spnas/models/detection/box_coder.h"
#include "spnas/models/detection/matcher.h"
#include "spnas/models/detection/transform.h"
#include "spnas/models/model.h"

namespace spnas {

// Pools each box from the level chosen by its scale (FPN paper, eq. 1): canonical box size 224
// at level 4.
class MultiScaleRoIAlign {
 public:
  MultiScaleRoIAlign(int64_t output_size, int64_t sampling_ratio)
      : output_size_(output_size), sampling_ratio_(sampling_ratio) {}
  at::Tensor operator()(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                        const ImageBatch& images) const;
  int64_t output_size() const { return output_size_; }

 private:
  int64_t output_size_, sampling_ratio_;
};

class FastRCNNPredictorImpl : public torch::nn::Module {
 public:
  FastRCNNPredictorImpl(int64_t in_features, int64_t num_classes);
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x);

 private:
  torch::nn::Linear cls_score_{nullptr}, bbox_pred_{nullptr};
};
TORCH_MODULE(FastRCNNPredictor);

struct RoIHeadsOptions {
  double fg_iou_thresh = 0.5, bg_iou_thresh = 0.5;
  int64_t batch_size_per_image = 512;
  double positive_fraction = 0.25;
  std::array<double, 4> bbox_reg_weights = {10.0, 10.0, 5.0, 5.0};
  double score_thresh = 0.05, nms_thresh = 0.5;
  int64_t detections_per_img = 100;
};

class RoIHeadsImpl : public torch::nn::Module {
 public:
  RoIHeadsImpl(MultiScaleRoIAlign pooler, std::shared_ptr<Head> box_head, FastRCNNPredictor predictor,
               RoIHeadsOptions options);

  std::vector<Detections> forward(const std::vector<at::Tensor>& features, std::vector<at::Tensor> proposals,
                                  const ImageBatch& images, const std::vector<Target>* targets,
                                  std::map<std::string, at::Tensor>* losses);

 private:
  MultiScaleRoIAlign pooler_;
  std::shared_ptr<Head> box_head_;
  FastRCNNPredictor predictor_{nullptr};
  RoIHeadsOptions options_;
  BoxCoder box_coder_;
  Matcher matcher_;
  BalancedSampler sampler_;
};
TORCH_MODULE(RoIHeads);

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_ROI_HEADS_H_
