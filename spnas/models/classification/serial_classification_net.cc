// SerialClassificationNet: a backbone + global average pooling + a linear classifier (fc).
// The backbone's parameters sit at the top level (conv1, layer1, ...), as in torchvision's
// ResNet classifiers, so its weights map to a detector's backbone.body.* by prefix.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/models/searchable.h"

namespace spnas {
namespace {

class SerialClassificationNet : public Classifier {
 public:
  using Options = SerialClassificationNetOptions;
  explicit SerialClassificationNet(const Options& options) {
    PluginConfig backbone = options.backbone();
    if (backbone.type().empty()) backbone.set_type("SerialBackbone");
    body_ = std::shared_ptr<Backbone>(
        ValueOrThrow(BackboneRegistry().Create(backbone.type(), backbone.options())).release());
    for (auto& item : body_->named_children()) register_module(item.key(), item.value());
    fc_ = register_module("fc", torch::nn::Linear(body_->StageChannels().back(), options.num_classes()));
  }
  static void SetDefaults(Options* options) {
    if (!options->has_num_classes()) options->set_num_classes(10);
  }
  static Status ValidateOptions(const Options& options) {
    if (!options.has_backbone()) return InvalidArgumentError("`backbone` is required");
    if (options.num_classes() < 2) return InvalidArgumentError("num_classes must be >= 2");
    return Status::Ok();
  }
  at::Tensor Forward(const at::Tensor& images) override {
    return fc_->forward(body_->Forward(images).stages.back().mean({2, 3}));
  }
  void train(bool on) override {
    Classifier::train(on);
    body_->train(on);  // the backbone may keep frozen BatchNorm in eval mode
  }

 private:
  std::shared_ptr<Backbone> body_;
  torch::nn::Linear fc_{nullptr};
};

SPNAS_REGISTER_PLUGIN(ModelRegistry, SerialClassificationNet);

// The serial code of a classifier's backbone (weight inheritance between a detector and the
// classifier that reignites its backbone aligns blocks by it).
class SearchableSerialClassificationNet : public SearchableModel {
 public:
  using Options = SerialClassificationNetOptions;
  explicit SearchableSerialClassificationNet(const Options& options)
      : SearchableModel("SerialClassificationNet"), options_(options) {
    if (options_.backbone().type().empty()) options_.mutable_backbone()->set_type("SerialBackbone");
  }
  PluginConfig Description() const override {
    PluginConfig desc;
    desc.set_type("SerialClassificationNet");
    desc.mutable_options()->PackFrom(options_);
    return desc;
  }
  StatusOr<std::string> SerialCode() const override { return SerialCodeOfBackbone(options_.backbone()); }
  Status SetSerialCode(const std::string& code) override {
    return SetSerialCodeOfBackbone(options_.mutable_backbone(), code);
  }
  StatusOr<PluginConfig> Backbone() const override { return options_.backbone(); }

 private:
  Options options_;
};
SPNAS_REGISTER_PLUGIN_AS(SearchableModelRegistry, SearchableSerialClassificationNet, "SerialClassificationNet");

}  // namespace
}  // namespace spnas
