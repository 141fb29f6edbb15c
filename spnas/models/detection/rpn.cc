#include "spnas/models/detection/rpn.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>

#include "spnas/ops/box_iou/box_iou.h"
#include "spnas/ops/nms/nms.h"

namespace spnas {

namespace F = torch::nn::functional;

RPNHeadImpl::RPNHeadImpl(int64_t in_channels, int64_t num_anchors) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(in_channels, in_channels, 3).padding(1));
  // conv.0.0: torchvision wraps the conv + ReLU block in a Sequential of its own.
  conv_ = torch::nn::Sequential(conv, torch::nn::ReLU(true));
  torch::nn::ModuleList outer;
  outer->push_back(conv_);
  register_module("conv", outer);
  cls_logits_ = register_module("cls_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, num_anchors, 1)));
  bbox_pred_ =
      register_module("bbox_pred", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, num_anchors * 4, 1)));
  torch::NoGradGuard no_grad;
  for (auto* c : {conv.get(), cls_logits_.get(), bbox_pred_.get()}) {
    torch::nn::init::normal_(c->weight, 0, 0.01);
    torch::nn::init::zeros_(c->bias);
  }
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> RPNHeadImpl::forward(
    const std::vector<at::Tensor>& features) {
  std::vector<at::Tensor> logits, deltas;
  for (const at::Tensor& f : features) {
    const at::Tensor t = conv_->forward(f);
    logits.push_back(cls_logits_->forward(t));
    deltas.push_back(bbox_pred_->forward(t));
  }
  return {logits, deltas};
}

namespace {

// [N, A*C, H, W] -> [N, H*W*A, C]
at::Tensor PermuteAndFlatten(const at::Tensor& layer, int64_t c) {
  const int64_t n = layer.size(0), h = layer.size(2), w = layer.size(3);
  const int64_t a = layer.size(1) / c;
  return layer.view({n, a, c, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, c});
}

}  // namespace

RegionProposalNetworkImpl::RegionProposalNetworkImpl(AnchorGenerator anchors, RPNHead head, RPNOptions options)
    : anchors_(std::move(anchors)),
      options_(options),
      matcher_(options.fg_iou_thresh, options.bg_iou_thresh, /*allow_low_quality_matches=*/true),
      sampler_(options.batch_size_per_image, options.positive_fraction) {
  head_ = register_module("head", head);
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> RegionProposalNetworkImpl::FilterProposals(
    const at::Tensor& proposals, const at::Tensor& objectness_in, const ImageBatch& images,
    const std::vector<int64_t>& num_anchors_per_level) {
  const int64_t num_images = proposals.size(0);
  const at::Tensor objectness_all = objectness_in.detach().reshape({num_images, -1});
  std::vector<at::Tensor> levels_list;
  for (size_t i = 0; i < num_anchors_per_level.size(); ++i) {
    levels_list.push_back(
        at::full({num_anchors_per_level[i]}, static_cast<int64_t>(i), objectness_all.options().dtype(at::kLong)));
  }
  const at::Tensor levels_all = at::cat(levels_list, 0).reshape({1, -1}).expand_as(objectness_all);

  // The top pre_nms_top_n anchors of each level.
  const int64_t pre_nms = is_training() ? options_.pre_nms_top_n_train : options_.pre_nms_top_n_test;
  std::vector<at::Tensor> top_idx;
  int64_t offset = 0;
  for (const at::Tensor& ob : objectness_all.split(num_anchors_per_level, 1)) {
    const int64_t k = std::min(pre_nms, ob.size(1));
    top_idx.push_back(std::get<1>(ob.topk(k, 1)) + offset);
    offset += ob.size(1);
  }
  const at::Tensor top = at::cat(top_idx, 1);
  const at::Tensor image_range = at::arange(num_images, top.options()).unsqueeze(1);
  const at::Tensor objectness = objectness_all.index({image_range, top});
  const at::Tensor levels = levels_all.index({image_range, top});
  const at::Tensor selected = proposals.index({image_range, top});
  const at::Tensor probs = at::sigmoid(objectness);

  const int64_t post_nms = is_training() ? options_.post_nms_top_n_train : options_.post_nms_top_n_test;
  std::vector<at::Tensor> boxes_out, scores_out;
  for (int64_t i = 0; i < num_images; ++i) {
    at::Tensor boxes = ops::ClipBoxesToImage(selected[i], images.sizes[i].first, images.sizes[i].second);
    at::Tensor scores = probs[i], lvl = levels[i];
    at::Tensor keep = ops::RemoveSmallBoxes(boxes, options_.min_size);
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), lvl = lvl.index_select(0, keep);
    keep = at::where(scores >= options_.score_thresh)[0];
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), lvl = lvl.index_select(0, keep);
    keep = ops::BatchedNms(boxes, scores, lvl, options_.nms_thresh);
    keep = keep.slice(0, 0, post_nms);
    boxes_out.push_back(boxes.index_select(0, keep));
    scores_out.push_back(scores.index_select(0, keep));
  }
  return {boxes_out, scores_out};
}

std::vector<at::Tensor> RegionProposalNetworkImpl::forward(const ImageBatch& images,
                                                           const std::vector<at::Tensor>& features,
                                                           const std::vector<Target>* targets,
                                                           std::map<std::string, at::Tensor>* losses) {
  auto [logits, deltas] = head_->forward(features);
  const at::Tensor anchors = anchors_(images.tensors.size(2), images.tensors.size(3), features);
  const int64_t num_images = images.tensors.size(0);
  std::vector<int64_t> num_anchors_per_level;
  std::vector<at::Tensor> flat_logits, flat_deltas;
  for (size_t i = 0; i < logits.size(); ++i) {
    num_anchors_per_level.push_back(logits[i].size(1) * logits[i].size(2) * logits[i].size(3));
    flat_logits.push_back(PermuteAndFlatten(logits[i], 1));
    flat_deltas.push_back(PermuteAndFlatten(deltas[i], 4));
  }
  const at::Tensor objectness = at::cat(flat_logits, 1).flatten(0, -2);
  const at::Tensor pred_deltas = at::cat(flat_deltas, 1).reshape({-1, 4});

  const at::Tensor all_anchors = anchors.repeat({num_images, 1});
  const at::Tensor proposals = box_coder_.Decode(pred_deltas.detach(), all_anchors).view({num_images, -1, 4});
  auto [boxes, scores] = FilterProposals(proposals, objectness, images, num_anchors_per_level);

  if (targets != nullptr) {
    std::vector<at::Tensor> labels, regression_targets;
    for (int64_t i = 0; i < num_images; ++i) {
      const at::Tensor& gt = (*targets)[i].boxes;
      if (gt.numel() == 0) {
        labels.push_back(at::zeros({anchors.size(0)}, anchors.options()));
        regression_targets.push_back(box_coder_.Encode(at::zeros_like(anchors), anchors));
        continue;
      }
      const at::Tensor matched = matcher_(ops::BoxIou(gt, anchors));
      const at::Tensor matched_gt = gt.index_select(0, matched.clamp_min(0));
      at::Tensor l = (matched >= 0).to(anchors.scalar_type());
      l.masked_fill_(matched == Matcher::kBelowLowThreshold, 0.0);
      l.masked_fill_(matched == Matcher::kBetweenThresholds, -1.0);
      labels.push_back(l);
      regression_targets.push_back(box_coder_.Encode(matched_gt, anchors));
    }
    auto [pos_masks, neg_masks] = sampler_(labels, *targets);
    const at::Tensor pos = at::where(at::cat(pos_masks, 0))[0];
    const at::Tensor neg = at::where(at::cat(neg_masks, 0))[0];
    const at::Tensor sampled = at::cat({pos, neg}, 0);
    const at::Tensor all_labels = at::cat(labels, 0);
    const at::Tensor all_targets = at::cat(regression_targets, 0);
    (*losses)["loss_rpn_box_reg"] =
        F::smooth_l1_loss(pred_deltas.index_select(0, pos), all_targets.index_select(0, pos),
                          F::SmoothL1LossFuncOptions().reduction(torch::kSum), 1.0 / 9) /
        sampled.numel();
    (*losses)["loss_objectness"] = F::binary_cross_entropy_with_logits(objectness.flatten().index_select(0, sampled),
                                                                       all_labels.index_select(0, sampled));
  }
  return boxes;
}

}  // namespace spnas
