// ParallelFPN (spnas.md §6): K_l sub-networks stacked on serial stage l, then an FPN.
// y^0 = C_l; y^m = SubNet_l^m(C_{l-1} + Conn_l^m(y^{m-1})), where SubNet_l^m has the blocks of
// stage l and Conn_l^m is a 1x1 conv + BatchNorm mapping stage-l features back to the shape of
// C_{l-1} (nearest resize). With every Conn's BatchNorm gamma at 0 and sub-networks holding the
// stage's weights, the neck starts by computing what the serial network computes.
#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/necks/fpn.h"

namespace spnas {
namespace {

namespace F = torch::nn::functional;

class SubNetworkImpl : public torch::nn::Module {
 public:
  SubNetworkImpl(const BlockConfig& block, const std::vector<BlockSpec>& specs, int64_t stage_channels,
                 int64_t input_channels) {
    conn_ = register_module(
        "conn", torch::nn::Sequential(
                    torch::nn::Conv2d(torch::nn::Conv2dOptions(stage_channels, input_channels, 1).bias(false)),
                    torch::nn::BatchNorm2d(input_channels)));
    blocks_ = register_module("blocks", MakeStage(block, specs));
    InitResNetWeights(*conn_);
    torch::NoGradGuard no_grad;
    conn_[1]->as<torch::nn::BatchNorm2d>()->weight.zero_();
  }
  at::Tensor forward(const at::Tensor& stage_input, const at::Tensor& previous) {
    at::Tensor c = conn_->forward(previous);
    if (c.sizes().slice(2) != stage_input.sizes().slice(2)) {
      c = F::interpolate(c, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{stage_input.size(2), stage_input.size(3)})
                                .mode(torch::kNearest));
    }
    return blocks_->forward(stage_input + c);
  }

 private:
  torch::nn::Sequential conn_{nullptr}, blocks_{nullptr};
};
TORCH_MODULE(SubNetwork);

class ParallelFPN : public Neck {
 public:
  using Options = ParallelFPNOptions;
  ParallelFPN(const Options& options, const Backbone& backbone)
      : code_(options.code().begin(), options.code().end()), out_channels_(options.out_channels()) {
    const auto* serial = dynamic_cast<const SerialBackbone*>(&backbone);
    TORCH_CHECK(serial != nullptr, "ParallelFPN stacks sub-networks on a SerialBackbone (or ResNet) backbone");
    const std::vector<int64_t> channels = serial->StageChannels();
    TORCH_CHECK(code_.size() == channels.size(), "ParallelFPN: code has ", code_.size(),
                " entries but the backbone has ", channels.size(), " stages; give one K per stage");
    torch::nn::ModuleList subnets;
    for (size_t l = 0; l < code_.size(); ++l) {
      const int64_t input = l == 0 ? serial->StemChannels() : channels[l - 1];
      torch::nn::ModuleList stack;
      std::vector<SubNetwork> mods;
      for (int m = 0; m < code_[l]; ++m) {
        mods.push_back(SubNetwork(serial->block_config(), serial->stage_blocks()[l], channels[l], input));
        stack->push_back(mods.back());
      }
      subnets_.push_back(mods);
      subnets->push_back(stack);
    }
    register_module("subnets", subnets);
    pyramid_ = FeaturePyramid(channels, out_channels_);
    for (auto& item : pyramid_->named_children()) register_module(item.key(), item.value());
  }

  static void SetDefaults(Options* options) {
    if (!options->has_out_channels()) options->set_out_channels(256);
  }
  static Status ValidateOptions(const Options& options) {
    if (options.code().empty()) return InvalidArgumentError("code needs one K per backbone stage, e.g. [0, 1, 0, 0]");
    for (int k : options.code()) {
      if (k < 0 || k > 8) return InvalidArgumentError("code values must be in 0..8, got ", k);
    }
    if (options.out_channels() <= 0) return InvalidArgumentError("out_channels must be > 0");
    return Status::Ok();
  }

  std::vector<at::Tensor> Forward(const BackboneFeatures& features) override {
    std::vector<at::Tensor> levels = features.stages;
    for (size_t l = 0; l < subnets_.size(); ++l) {
      const at::Tensor& stage_input = l == 0 ? features.stem : features.stages[l - 1];
      at::Tensor y = features.stages[l];
      for (auto& subnet : subnets_[l]) y = subnet->forward(stage_input, y);
      levels[l] = y;
    }
    return pyramid_->forward(levels);
  }
  int64_t OutChannels() const override { return out_channels_; }
  int64_t NumRoiLevels() const override { return static_cast<int64_t>(code_.size()); }

 private:
  std::vector<int> code_;
  int64_t out_channels_;
  std::vector<std::vector<SubNetwork>> subnets_;
  FeaturePyramid pyramid_{nullptr};
};

SPNAS_REGISTER_PLUGIN(NeckRegistry, ParallelFPN);

}  // namespace
}  // namespace spnas
