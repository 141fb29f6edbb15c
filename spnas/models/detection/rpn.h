// Region proposal network (torchvision RPNHead + RegionProposalNetwork).
#ifndef SPNAS_MODELS_DETECTION_RPN_H_
#define SPNAS_MODELS_DETECTION_RPN_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "spnas/models/detection/anchors.h"
#include "spnas/models/detection/box_coder.h"
#include "spnas/models/detection/matcher.h"
#include "spnas/models/detection/transform.h"
#include "spnas/models/model.h"

namespace spnas {

// 3x3 conv + ReLU, then per anchor an objectness logit and 4 box deltas (names conv.0.0,
// cls_logits, bbox_pred).
class RPNHeadImpl : public torch::nn::Module {
 public:
  RPNHeadImpl(int64_t in_channels, int64_t num_anchors);
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> forward(const std::vector<at::Tensor>& features);

 private:
  torch::nn::Sequential conv_{nullptr};
  torch::nn::Conv2d cls_logits_{nullptr}, bbox_pred_{nullptr};
};
TORCH_MODULE(RPNHead);

struct RPNOptions {
  int64_t pre_nms_top_n_train = 2000, pre_nms_top_n_test = 1000;
  int64_t post_nms_top_n_train = 2000, post_nms_top_n_test = 1000;
  double nms_thresh = 0.7, fg_iou_thresh = 0.7, bg_iou_thresh = 0.3;
  int64_t batch_size_per_image = 256;
  double positive_fraction = 0.5, score_thresh = 0.0, min_size = 1e-3;
};

class RegionProposalNetworkImpl : public torch::nn::Module {
 public:
  RegionProposalNetworkImpl(AnchorGenerator anchors, RPNHead head, RPNOptions options);

  // Proposals [P_i, 4] per image; with targets (training) also the two RPN losses.
  std::vector<at::Tensor> forward(const ImageBatch& images, const std::vector<at::Tensor>& features,
                                  const std::vector<Target>* targets, std::map<std::string, at::Tensor>* losses);

 private:
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> FilterProposals(
      const at::Tensor& proposals, const at::Tensor& objectness, const ImageBatch& images,
      const std::vector<int64_t>& num_anchors_per_level);

  AnchorGenerator anchors_;
  RPNHead head_{nullptr};
  RPNOptions options_;
  BoxCoder box_coder_{{1.0, 1.0, 1.0, 1.0}};
  Matcher matcher_;
  BalancedSampler sampler_;
};
TORCH_MODULE(RegionProposalNetwork);

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_RPN_H_
