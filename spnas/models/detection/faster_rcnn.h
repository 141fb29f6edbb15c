// FasterRCNN: torchvision-compatible two-stage detector composed of a backbone plugin, a neck
// plugin and a box head plugin; parameters named backbone.body.*, backbone.fpn.*, rpn.*,
// roi_heads.*, so a torchvision fasterrcnn_*_fpn state dict loads by name.
#ifndef SPNAS_MODELS_DETECTION_FASTER_RCNN_H_
#define SPNAS_MODELS_DETECTION_FASTER_RCNN_H_

#include <memory>

#include "spnas/models/detection/roi_heads.h"
#include "spnas/models/detection/rpn.h"
#include "spnas/models/detection/transform.h"
#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"

namespace spnas {

// backbone.body + backbone.fpn
class BackboneWithNeckImpl : public torch::nn::Module {
 public:
  BackboneWithNeckImpl(std::shared_ptr<Backbone> body, std::shared_ptr<Neck> neck);
  std::vector<at::Tensor> forward(const at::Tensor& images);
  Backbone& body() { return *body_; }
  Neck& neck() { return *neck_; }

 private:
  std::shared_ptr<Backbone> body_;
  std::shared_ptr<Neck> neck_;
};
TORCH_MODULE(BackboneWithNeck);

class FasterRCNN : public Detector {
 public:
  using Options = FasterRCNNOptions;
  explicit FasterRCNN(const Options& options);
  static void SetDefaults(Options* options);
  static Status ValidateOptions(const Options& options);

  // The dtypes of a forward pass, with or without autocast (float16 or bfloat16 on CUDA,
  // bfloat16 on the CPU): the features, RPN logits and deltas, pooled RoI features and box
  // head outputs are in autocast's dtype; anchors, decoded proposals, detection boxes and scores are
  // float32 at least (BoxCoder::Decode and AnchorGenerator); NMS, RoIAlign's sampling and IoU
  // compute in float32; every loss is float32 (autocast's float32 list).
  DetectorOutput Forward(const std::vector<at::Tensor>& images, const std::vector<Target>* targets = nullptr) override;
  std::vector<at::Tensor> Features(const at::Tensor& batch) override { return backbone_->forward(batch); }
  BackboneWithNeck& backbone() { return backbone_; }

 private:
  // Shapes and devices of the targets, and their boxes and labels, which the host looks at once
  // per batch.
  void CheckTargets(const std::vector<at::Tensor>& images, const std::vector<Target>& targets) const;

  int64_t num_classes_;
  DetectionTransform transform_;
  BackboneWithNeck backbone_{nullptr};
  RegionProposalNetwork rpn_{nullptr};
  RoIHeads roi_heads_{nullptr};
};

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_FASTER_RCNN_H_
