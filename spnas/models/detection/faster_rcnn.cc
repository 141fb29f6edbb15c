#include "spnas/models/detection/faster_rcnn.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/searchable.h"

namespace spnas {

BackboneWithNeckImpl::BackboneWithNeckImpl(std::shared_ptr<Backbone> body, std::shared_ptr<Neck> neck) {
  body_ = register_module("body", body);
  neck_ = register_module("fpn", neck);
}

std::vector<at::Tensor> BackboneWithNeckImpl::forward(const at::Tensor& images) {
  return neck_->Forward(body_->Forward(images));
}

void FasterRCNN::SetDefaults(Options* options) {
  Options& o = *options;
  if (!o.has_backbone()) {
    o.mutable_backbone()->set_type("ResNet");
    ResNetOptions resnet;
    resnet.set_depth(50);
    o.mutable_backbone()->mutable_options()->PackFrom(resnet);
  }
  if (!o.has_neck()) o.mutable_neck()->set_type("FPN");
  if (!o.has_box_head()) o.mutable_box_head()->set_type("TwoMLPHead");
  if (!o.has_num_classes()) o.set_num_classes(91);
  if (o.min_size().empty()) o.add_min_size(800);
  if (!o.has_max_size()) o.set_max_size(1333);
  if (o.image_mean().empty()) {
    for (float v : {0.485f, 0.456f, 0.406f}) o.add_image_mean(v);
  }
  if (o.image_std().empty()) {
    for (float v : {0.229f, 0.224f, 0.225f}) o.add_image_std(v);
  }
  if (!o.has_size_divisible()) o.set_size_divisible(32);
  if (o.anchor_sizes().empty()) {
    for (int v : {32, 64, 128, 256, 512}) o.add_anchor_sizes(v);
  }
  if (o.aspect_ratios().empty()) {
    for (float v : {0.5f, 1.0f, 2.0f}) o.add_aspect_ratios(v);
  }
  if (!o.has_rpn_pre_nms_top_n_train()) o.set_rpn_pre_nms_top_n_train(2000);
  if (!o.has_rpn_pre_nms_top_n_test()) o.set_rpn_pre_nms_top_n_test(1000);
  if (!o.has_rpn_post_nms_top_n_train()) o.set_rpn_post_nms_top_n_train(2000);
  if (!o.has_rpn_post_nms_top_n_test()) o.set_rpn_post_nms_top_n_test(1000);
  if (!o.has_rpn_nms_thresh()) o.set_rpn_nms_thresh(0.7f);
  if (!o.has_rpn_fg_iou_thresh()) o.set_rpn_fg_iou_thresh(0.7f);
  if (!o.has_rpn_bg_iou_thresh()) o.set_rpn_bg_iou_thresh(0.3f);
  if (!o.has_rpn_batch_size_per_image()) o.set_rpn_batch_size_per_image(256);
  if (!o.has_rpn_positive_fraction()) o.set_rpn_positive_fraction(0.5f);
  if (!o.has_rpn_score_thresh()) o.set_rpn_score_thresh(0.0f);
  if (!o.has_roi_output_size()) o.set_roi_output_size(7);
  if (!o.has_roi_sampling_ratio()) o.set_roi_sampling_ratio(2);
  if (!o.has_box_score_thresh()) o.set_box_score_thresh(0.05f);
  if (!o.has_box_nms_thresh()) o.set_box_nms_thresh(0.5f);
  if (!o.has_box_detections_per_img()) o.set_box_detections_per_img(100);
  if (!o.has_box_fg_iou_thresh()) o.set_box_fg_iou_thresh(0.5f);
  if (!o.has_box_bg_iou_thresh()) o.set_box_bg_iou_thresh(0.5f);
  if (!o.has_box_batch_size_per_image()) o.set_box_batch_size_per_image(512);
  if (!o.has_box_positive_fraction()) o.set_box_positive_fraction(0.25f);
  if (o.bbox_reg_weights().empty()) {
    for (float v : {10.0f, 10.0f, 5.0f, 5.0f}) o.add_bbox_reg_weights(v);
  }
}

Status FasterRCNN::ValidateOptions(const Options& o) {
  if (o.num_classes() < 2)
    return InvalidArgumentError("num_classes counts the background and must be >= 2, got ", o.num_classes());
  for (int s : o.min_size()) {
    if (s <= 0) return InvalidArgumentError("min_size values must be > 0, got ", s);
  }
  if (o.max_size() <= 0) return InvalidArgumentError("max_size must be > 0, got ", o.max_size());
  if (o.image_mean_size() != 3 || o.image_std_size() != 3) {
    return InvalidArgumentError("image_mean and image_std need 3 values (RGB)");
  }
  if (o.bbox_reg_weights_size() != 4) return InvalidArgumentError("bbox_reg_weights needs 4 values");
  for (float r : o.aspect_ratios()) {
    if (r <= 0) return InvalidArgumentError("aspect_ratios must be > 0, got ", r);
  }
  for (float t : {o.rpn_nms_thresh(), o.rpn_fg_iou_thresh(), o.rpn_bg_iou_thresh(), o.box_nms_thresh(),
                  o.box_fg_iou_thresh(), o.box_bg_iou_thresh(), o.rpn_positive_fraction(), o.box_positive_fraction()}) {
    if (t < 0 || t > 1) return InvalidArgumentError("IoU thresholds and fractions must be in [0, 1], got ", t);
  }
  if (o.rpn_bg_iou_thresh() > o.rpn_fg_iou_thresh() || o.box_bg_iou_thresh() > o.box_fg_iou_thresh()) {
    return InvalidArgumentError("a background IoU threshold is above its foreground threshold");
  }
  for (int v : {o.rpn_pre_nms_top_n_train(), o.rpn_pre_nms_top_n_test(), o.rpn_post_nms_top_n_train(),
                o.rpn_post_nms_top_n_test(), o.rpn_batch_size_per_image(), o.box_batch_size_per_image(),
                o.box_detections_per_img(), o.roi_output_size(), o.size_divisible()}) {
    if (v <= 0) return InvalidArgumentError("sizes and counts must be > 0, got ", v);
  }
  return Status::Ok();
}

FasterRCNN::FasterRCNN(const Options& options)
    : num_classes_(OptionsWithDefaults<FasterRCNN>(options).num_classes()), transform_(TransformOptions{}) {
  const Options o = OptionsWithDefaults<FasterRCNN>(options);
  TransformOptions t;
  t.min_size.assign(o.min_size().begin(), o.min_size().end());
  t.max_size = o.max_size();
  t.mean.assign(o.image_mean().begin(), o.image_mean().end());
  t.std.assign(o.image_std().begin(), o.image_std().end());
  t.size_divisible = o.size_divisible();
  transform_ = DetectionTransform(t);

  std::shared_ptr<Backbone> body(
      ValueOrThrow(BackboneRegistry().Create(o.backbone().type(), o.backbone().options())).release());
  std::shared_ptr<Neck> neck(ValueOrThrow(NeckRegistry().Create(o.neck().type(), o.neck().options(), *body)).release());
  const int64_t channels = neck->OutChannels();
  backbone_ = register_module("backbone", BackboneWithNeck(body, neck));

  // The neck's levels: RoI levels plus extra ones (LastLevelMaxPool); one anchor size each.
  const int64_t levels = neck->NumRoiLevels() + 1;
  TORCH_CHECK(o.anchor_sizes_size() <= levels, "FasterRCNN: the neck gives ", levels, " feature levels, but ",
              o.anchor_sizes_size(), " anchor_sizes are given");
  std::vector<std::vector<double>> sizes, ratios;
  for (int64_t level = 0; level < levels; ++level) {
    // A backbone with more stages (SP-NAS add-stage) gets anchors doubling per extra level.
    const double size = level < o.anchor_sizes_size() ? o.anchor_sizes(level)
                                                      : o.anchor_sizes(o.anchor_sizes_size() - 1) *
                                                            std::pow(2.0, level - o.anchor_sizes_size() + 1);
    sizes.push_back({size});
    ratios.emplace_back(o.aspect_ratios().begin(), o.aspect_ratios().end());
  }
  AnchorGenerator anchors(sizes, ratios);
  RPNOptions rpn;
  rpn.pre_nms_top_n_train = o.rpn_pre_nms_top_n_train();
  rpn.pre_nms_top_n_test = o.rpn_pre_nms_top_n_test();
  rpn.post_nms_top_n_train = o.rpn_post_nms_top_n_train();
  rpn.post_nms_top_n_test = o.rpn_post_nms_top_n_test();
  rpn.nms_thresh = o.rpn_nms_thresh();
  rpn.fg_iou_thresh = o.rpn_fg_iou_thresh();
  rpn.bg_iou_thresh = o.rpn_bg_iou_thresh();
  rpn.batch_size_per_image = o.rpn_batch_size_per_image();
  rpn.positive_fraction = o.rpn_positive_fraction();
  rpn.score_thresh = o.rpn_score_thresh();
  rpn_ = register_module("rpn",
                         RegionProposalNetwork(anchors, RPNHead(channels, anchors.NumAnchorsPerLocation()[0]), rpn));

  const int64_t pool = o.roi_output_size();
  std::shared_ptr<Head> box_head(
      ValueOrThrow(HeadRegistry().Create(o.box_head().type(), o.box_head().options(), channels, pool, pool)).release());
  RoIHeadsOptions heads;
  heads.fg_iou_thresh = o.box_fg_iou_thresh();
  heads.bg_iou_thresh = o.box_bg_iou_thresh();
  heads.batch_size_per_image = o.box_batch_size_per_image();
  heads.positive_fraction = o.box_positive_fraction();
  heads.bbox_reg_weights = {o.bbox_reg_weights(0), o.bbox_reg_weights(1), o.bbox_reg_weights(2), o.bbox_reg_weights(3)};
  heads.score_thresh = o.box_score_thresh();
  heads.nms_thresh = o.box_nms_thresh();
  heads.detections_per_img = o.box_detections_per_img();
  roi_heads_ = register_module("roi_heads", RoIHeads(MultiScaleRoIAlign(pool, o.roi_sampling_ratio()), box_head,
                                                     FastRCNNPredictor(box_head->OutFeatures(), num_classes_), heads));
}

void FasterRCNN::CheckTargets(const std::vector<at::Tensor>& images, const std::vector<Target>& targets) const {
  std::vector<at::Tensor> bad;  // per image: a degenerate box or a label out of range
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    TORCH_CHECK(t.boxes.dim() == 2 && t.boxes.size(1) == 4, "FasterRCNN: target ", i,
                " boxes should be a [K, 4] tensor, got ", t.boxes.sizes());
    TORCH_CHECK(t.boxes.is_floating_point(), "FasterRCNN: target ", i, " boxes should be floating point, got ",
                t.boxes.scalar_type());
    TORCH_CHECK(t.labels.dim() == 1 && t.labels.size(0) == t.boxes.size(0), "FasterRCNN: target ", i,
                " needs one label per box, got labels ", t.labels.sizes(), " for ", t.boxes.size(0), " boxes");
    TORCH_CHECK(t.boxes.device() == images[i].device(), "FasterRCNN: target ", i, " is on ", t.boxes.device(),
                " but its image is on ", images[i].device());
    if (t.boxes.numel() == 0) continue;
    const at::Tensor degenerate = (t.boxes.slice(1, 2) <= t.boxes.slice(1, 0, 2)).any(1);
    const at::Tensor outside = (t.labels < 1).logical_or(t.labels >= num_classes_);
    bad.push_back(degenerate.any().logical_or(outside.any()).reshape({1}));
  }
  // One look from the host for the whole batch (torchvision looks once per image, for the
  // degenerate boxes alone); the details only when something is wrong.
  if (bad.empty() || !at::cat(bad).any().item<bool>()) return;
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    if (t.boxes.numel() == 0) continue;
    const at::Tensor degenerate = (t.boxes.slice(1, 2) <= t.boxes.slice(1, 0, 2)).any(1);
    if (degenerate.any().item<bool>()) {
      const int64_t b = at::where(degenerate)[0][0].item<int64_t>();
      TORCH_CHECK(false, "FasterRCNN: all boxes need positive height and width; target ", i, " box ", b, " is ",
                  t.boxes[b]);
    }
    TORCH_CHECK(t.labels.min().item<int64_t>() >= 1 && t.labels.max().item<int64_t>() < num_classes_,
                "FasterRCNN: target ", i, " has labels outside 1..", num_classes_ - 1, " (0 is the background)");
  }
}

DetectorOutput FasterRCNN::Forward(const std::vector<at::Tensor>& images, const std::vector<Target>* targets_in) {
  DetectorOutput out;
  const bool training = is_training();
  TORCH_CHECK(!training || targets_in != nullptr, "FasterRCNN: targets are required in training mode");
  std::vector<Target> targets;
  if (targets_in != nullptr) {
    TORCH_CHECK(targets_in->size() == images.size(), "FasterRCNN: ", images.size(), " images but ", targets_in->size(),
                " targets");
    CheckTargets(images, *targets_in);
    for (const Target& t : *targets_in) targets.push_back({t.boxes, t.labels, t.generator});
  }
  std::vector<std::pair<int64_t, int64_t>> original_sizes;
  for (const at::Tensor& image : images) original_sizes.emplace_back(image.size(-2), image.size(-1));
  const ImageBatch batch = transform_(images, targets_in != nullptr ? &targets : nullptr, training);
  const std::vector<at::Tensor> features = backbone_->forward(batch.tensors);
  for (const at::Tensor& f : features) {
    TORCH_CHECK(f.size(-2) > 0 && f.size(-1) > 0, "FasterRCNN: the image batch ", batch.tensors.sizes(),
                " is too small for the backbone's strides; use a larger min_size");
  }
  const std::vector<Target>* t = targets_in != nullptr && training ? &targets : nullptr;
  std::vector<at::Tensor> proposals = rpn_->forward(batch, features, t, &out.losses);
  const int64_t roi_levels = backbone_->neck().NumRoiLevels();
  const std::vector<at::Tensor> roi_features(features.begin(), features.begin() + roi_levels);
  out.detections = roi_heads_->forward(roi_features, proposals, batch, t, &out.losses);
  for (size_t i = 0; i < out.detections.size(); ++i) {
    out.detections[i].boxes = ResizeBoxes(out.detections[i].boxes, batch.sizes[i], original_sizes[i]);
  }
  return out;
}

namespace {

SPNAS_REGISTER_PLUGIN(ModelRegistry, FasterRCNN);

// What SpNasS, SpNasP and reignition change in a FasterRCNN description.
class SearchableFasterRCNN : public SearchableModel {
 public:
  using Options = FasterRCNNOptions;
  explicit SearchableFasterRCNN(const Options& options) : SearchableModel("FasterRCNN"), options_(options) {}

  PluginConfig Description() const override {
    PluginConfig desc;
    desc.set_type("FasterRCNN");
    desc.mutable_options()->PackFrom(options_);
    return desc;
  }
  StatusOr<std::string> SerialCode() const override {
    return SerialCodeOfBackbone(OptionsWithDefaults<FasterRCNN>(options_).backbone());
  }
  Status SetSerialCode(const std::string& code) override {
    if (!options_.has_backbone()) *options_.mutable_backbone() = OptionsWithDefaults<FasterRCNN>(options_).backbone();
    return SetSerialCodeOfBackbone(options_.mutable_backbone(), code);
  }
  // The backbone gets the parallel structure; out_channels > 0 sets the FPN's width.
  Status SetParallelCode(const std::vector<int>& code, int out_channels) override {
    const FasterRCNNOptions defaulted = OptionsWithDefaults<FasterRCNN>(options_);
    if (!options_.has_backbone()) *options_.mutable_backbone() = defaulted.backbone();
    SPNAS_RETURN_IF_ERROR(SetParallelCodeOfBackbone(options_.mutable_backbone(), code));
    if (out_channels <= 0) return Status::Ok();
    if (!options_.has_neck()) *options_.mutable_neck() = defaulted.neck();
    FPNOptions fpn;
    if (options_.neck().type() != "FPN" || !options_.neck().options().UnpackTo(&fpn)) {
      return FailedPreconditionError("the parallel search sets the width of an FPN neck, not of '",
                                     options_.neck().type(), "'");
    }
    fpn.set_out_channels(out_channels);
    options_.mutable_neck()->mutable_options()->PackFrom(fpn);
    return Status::Ok();
  }
  StatusOr<PluginConfig> Backbone() const override { return OptionsWithDefaults<FasterRCNN>(options_).backbone(); }
  StatusOr<int> Reignitions() const override { return options_.reignitions(); }
  Status SetReignitions(int count) override {
    options_.set_reignitions(count);
    return Status::Ok();
  }

 private:
  Options options_;
};
SPNAS_REGISTER_PLUGIN_AS(SearchableModelRegistry, SearchableFasterRCNN, "FasterRCNN");

}  // namespace

}  // namespace spnas
