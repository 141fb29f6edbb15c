#include "spnas/models/detection/roi_heads.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>

#include <cmath>

#include "spnas/ops/box_iou/box_iou.h"
#include "spnas/ops/nms/nms.h"
#include "spnas/ops/roi_align/roi_align.h"

namespace spnas {

namespace F = torch::nn::functional;

at::Tensor MultiScaleRoIAlign::operator()(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                                          const ImageBatch& images) const {
  // Each level's scale: the power of two closest to feature size / largest image size.
  int64_t max_h = 0, max_w = 0;
  for (const auto& s : images.sizes) {
    max_h = std::max(max_h, s.first);
    max_w = std::max(max_w, s.second);
  }
  std::vector<double> scales;
  for (const at::Tensor& f : features) {
    const double approx = static_cast<double>(f.size(-2)) / static_cast<double>(max_h);
    scales.push_back(std::pow(2.0, std::round(std::log2(static_cast<float>(approx)))));
  }
  const int64_t k_min = static_cast<int64_t>(-std::log2(static_cast<float>(scales.front())));
  const int64_t k_max = static_cast<int64_t>(-std::log2(static_cast<float>(scales.back())));

  std::vector<at::Tensor> with_ids;
  for (size_t i = 0; i < boxes.size(); ++i) {
    with_ids.push_back(at::cat({at::full_like(boxes[i].slice(1, 0, 1), static_cast<double>(i)), boxes[i]}, 1));
  }
  const at::Tensor rois = at::cat(with_ids, 0);
  // Under autocast the features are in half precision while the boxes stay float32: pool in the
  // boxes' precision (box coordinates in half would be off by pixels on large images), and hand
  // back the features' dtype, as torchvision's autocast RoIAlign does.
  auto level_input = [&](size_t level) { return features[level].to(rois.scalar_type()); };
  const c10::ScalarType out_dtype = features[0].scalar_type();
  if (features.size() == 1) {
    return ops::RoiAlign(level_input(0), rois, scales[0], output_size_, output_size_, sampling_ratio_, false)
        .to(out_dtype);
  }
  const at::Tensor all_boxes = at::cat(boxes, 0);
  const at::Tensor s = at::sqrt(ops::BoxArea(all_boxes));
  const at::Tensor eps = at::scalar_tensor(1e-6, s.options());
  at::Tensor target = at::floor(4 + at::log2(s / 224) + eps);
  target = at::clamp(target, static_cast<double>(k_min), static_cast<double>(k_max));
  const at::Tensor levels = target.to(at::kLong) - k_min;

  // Pool each level's boxes, then put the rows back in the boxes' order with one gather (rather
  // than a scatter per level into a full-size result, which copies it each time).
  std::vector<at::Tensor> pooled, positions;
  for (size_t level = 0; level < features.size(); ++level) {
    const at::Tensor idx = at::where(levels == static_cast<int64_t>(level))[0];
    if (idx.numel() == 0) continue;
    pooled.push_back(ops::RoiAlign(level_input(level), rois.index_select(0, idx), scales[level], output_size_,
                                   output_size_, sampling_ratio_, false));
    positions.push_back(idx);
  }
  if (pooled.empty()) {
    return at::zeros({0, features[0].size(1), output_size_, output_size_}, features[0].options());
  }
  const at::Tensor order = at::cat(positions);
  at::Tensor inverse = at::empty_like(order);
  inverse.index_put_({order}, at::arange(order.size(0), order.options()));
  return at::cat(pooled).index_select(0, inverse).to(out_dtype);
}

FastRCNNPredictorImpl::FastRCNNPredictorImpl(int64_t in_features, int64_t num_classes) {
  cls_score_ = register_module("cls_score", torch::nn::Linear(in_features, num_classes));
  bbox_pred_ = register_module("bbox_pred", torch::nn::Linear(in_features, num_classes * 4));
}

std::pair<at::Tensor, at::Tensor> FastRCNNPredictorImpl::forward(const at::Tensor& x_in) {
  const at::Tensor x = x_in.flatten(1);
  return {cls_score_->forward(x), bbox_pred_->forward(x)};
}

RoIHeadsImpl::RoIHeadsImpl(MultiScaleRoIAlign pooler, std::shared_ptr<Head> box_head, FastRCNNPredictor predictor,
                           RoIHeadsOptions options)
    : pooler_(pooler),
      options_(options),
      box_coder_(options.bbox_reg_weights),
      matcher_(options.fg_iou_thresh, options.bg_iou_thresh, /*allow_low_quality_matches=*/false),
      sampler_(options.batch_size_per_image, options.positive_fraction) {
  box_head_ = register_module("box_head", box_head);
  predictor_ = register_module("box_predictor", predictor);
}

std::vector<Detections> RoIHeadsImpl::forward(const std::vector<at::Tensor>& features,
                                              std::vector<at::Tensor> proposals, const ImageBatch& images,
                                              const std::vector<Target>* targets,
                                              std::map<std::string, at::Tensor>* losses) {
  const size_t num_images = proposals.size();
  std::vector<at::Tensor> labels, regression_targets;
  if (targets != nullptr) {
    // Ground truth joins the proposals; each proposal is matched, labelled and sampled.
    std::vector<at::Tensor> matched_idxs;
    for (size_t i = 0; i < num_images; ++i) {
      const at::Tensor gt = (*targets)[i].boxes.to(proposals[i].scalar_type());
      proposals[i] = at::cat({proposals[i], gt}, 0);
      if (gt.numel() == 0) {
        matched_idxs.push_back(at::zeros({proposals[i].size(0)}, proposals[i].options().dtype(at::kLong)));
        labels.push_back(at::zeros({proposals[i].size(0)}, proposals[i].options().dtype(at::kLong)));
        continue;
      }
      const at::Tensor matched = matcher_(ops::BoxIou(gt, proposals[i]));
      const at::Tensor clamped = matched.clamp_min(0);
      at::Tensor l = (*targets)[i].labels.index_select(0, clamped).to(at::kLong);
      l.masked_fill_(matched == Matcher::kBelowLowThreshold, 0);
      l.masked_fill_(matched == Matcher::kBetweenThresholds, -1);
      matched_idxs.push_back(clamped);
      labels.push_back(l);
    }
    auto [pos_masks, neg_masks] = sampler_(labels, *targets);
    std::vector<at::Tensor> matched_gt;
    for (size_t i = 0; i < num_images; ++i) {
      const at::Tensor sampled = at::where(pos_masks[i].logical_or(neg_masks[i]))[0];
      proposals[i] = proposals[i].index_select(0, sampled);
      labels[i] = labels[i].index_select(0, sampled);
      at::Tensor gt = (*targets)[i].boxes.to(proposals[i].scalar_type());
      if (gt.numel() == 0) gt = at::zeros({1, 4}, proposals[i].options());
      matched_gt.push_back(gt.index_select(0, matched_idxs[i].index_select(0, sampled)));
    }
    std::vector<int64_t> counts;
    for (const auto& p : proposals) counts.push_back(p.size(0));
    regression_targets = box_coder_.Encode(at::cat(matched_gt, 0), at::cat(proposals, 0)).split(counts, 0);
  }

  const at::Tensor pooled = pooler_(features, proposals, images);
  const at::Tensor representation = box_head_->Forward(pooled);
  auto [class_logits, box_regression] = predictor_->forward(representation);

  std::vector<Detections> detections;
  if (targets != nullptr) {
    const at::Tensor all_labels = at::cat(labels, 0);
    const at::Tensor all_targets = at::cat(regression_targets, 0);
    (*losses)["loss_classifier"] = F::cross_entropy(class_logits, all_labels);
    const at::Tensor pos = at::where(all_labels > 0)[0];
    const at::Tensor labels_pos = all_labels.index_select(0, pos);
    const int64_t n = class_logits.size(0);
    const at::Tensor regression = box_regression.reshape({n, box_regression.size(-1) / 4, 4});
    (*losses)["loss_box_reg"] = F::smooth_l1_loss(regression.index({pos, labels_pos}), all_targets.index_select(0, pos),
                                                  F::SmoothL1LossFuncOptions().reduction(torch::kSum), 1.0 / 9) /
                                all_labels.numel();
    return detections;
  }

  // Post-processing: per class decode, clip, score threshold, small-box removal, class-wise NMS.
  const int64_t num_classes = class_logits.size(-1);
  std::vector<int64_t> counts;
  for (const auto& p : proposals) counts.push_back(p.size(0));
  const at::Tensor pred_boxes = box_coder_.Decode(box_regression, at::cat(proposals, 0));
  // Scores in float32 at least, like the boxes, whatever autocast gave the logits.
  const at::Tensor pred_scores =
      at::softmax(class_logits.to(at::promote_types(class_logits.scalar_type(), at::kFloat)), -1);
  const auto boxes_list = pred_boxes.split(counts, 0);
  const auto scores_list = pred_scores.split(counts, 0);
  for (size_t i = 0; i < num_images; ++i) {
    at::Tensor boxes = ops::ClipBoxesToImage(boxes_list[i], images.sizes[i].first, images.sizes[i].second);
    at::Tensor scores = scores_list[i];
    at::Tensor cls = at::arange(num_classes, boxes.options().dtype(at::kLong)).view({1, -1}).expand_as(scores);
    boxes = boxes.slice(1, 1).reshape({-1, 4});
    scores = scores.slice(1, 1).reshape(-1);
    cls = cls.slice(1, 1).reshape(-1);
    at::Tensor keep = at::where(scores > options_.score_thresh)[0];
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), cls = cls.index_select(0, keep);
    keep = ops::RemoveSmallBoxes(boxes, 1e-2);
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), cls = cls.index_select(0, keep);
    keep = ops::BatchedNms(boxes, scores, cls, options_.nms_thresh).slice(0, 0, options_.detections_per_img);
    detections.push_back({boxes.index_select(0, keep), scores.index_select(0, keep), cls.index_select(0, keep)});
  }
  return detections;
}

}  // namespace spnas
