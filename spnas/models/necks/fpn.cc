#include "spnas/models/necks/fpn.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>

namespace spnas {

namespace F = torch::nn::functional;

namespace {

torch::nn::Sequential ConvBlock(int64_t in, int64_t out, int64_t kernel) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(conv->weight, /*a=*/1);
  torch::nn::init::zeros_(conv->bias);
  return torch::nn::Sequential(conv);
}

}  // namespace

FeaturePyramidImpl::FeaturePyramidImpl(const std::vector<int64_t>& in_channels, int64_t out_channels) {
  torch::nn::ModuleList inner, layer;
  for (int64_t c : in_channels) {
    inner_.push_back(ConvBlock(c, out_channels, 1));
    layer_.push_back(ConvBlock(out_channels, out_channels, 3));
    inner->push_back(inner_.back());
    layer->push_back(layer_.back());
  }
  register_module("inner_blocks", inner);
  register_module("layer_blocks", layer);
}

std::vector<at::Tensor> FeaturePyramidImpl::forward(const std::vector<at::Tensor>& inputs) {
  const int n = static_cast<int>(inputs.size());
  std::vector<at::Tensor> results(n);
  at::Tensor last_inner = inner_[n - 1]->forward(inputs[n - 1]);
  results[n - 1] = layer_[n - 1]->forward(last_inner);
  for (int i = n - 2; i >= 0; --i) {
    const at::Tensor lateral = inner_[i]->forward(inputs[i]);
    const at::Tensor top_down =
        F::interpolate(last_inner, F::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{lateral.size(-2), lateral.size(-1)})
                                       .mode(torch::kNearest));
    last_inner = lateral + top_down;
    results[i] = layer_[i]->forward(last_inner);
  }
  results.push_back(F::max_pool2d(results.back(), F::MaxPool2dFuncOptions(1).stride(2).padding(0)));
  return results;
}

void FPN::SetDefaults(Options* options) {
  if (!options->has_out_channels()) options->set_out_channels(256);
}

Status FPN::ValidateOptions(const Options& options) {
  if (options.out_channels() <= 0) {
    return InvalidArgumentError("out_channels must be > 0, got ", options.out_channels());
  }
  for (int s : options.stages()) {
    if (s < 1) return InvalidArgumentError("stages are 1-based, got ", s);
  }
  return Status::Ok();
}

FPN::FPN(const Options& options, const Backbone& backbone)
    : out_channels_(OptionsWithDefaults<FPN>(options).out_channels()) {
  const std::vector<int64_t> channels = backbone.StageChannels();
  std::vector<int64_t> in_channels;
  if (options.stages().empty()) {
    for (size_t s = 0; s < channels.size(); ++s) stages_.push_back(static_cast<int>(s));
  } else {
    for (int s : options.stages()) {
      TORCH_CHECK(s <= static_cast<int>(channels.size()), "FPN: stage ", s, " requested, but the backbone has ",
                  channels.size(), " stages");
      stages_.push_back(s - 1);
    }
  }
  for (int s : stages_) in_channels.push_back(channels[s]);
  pyramid_ = FeaturePyramid(in_channels, out_channels_);
  // Registered under the neck itself, so names are fpn.inner_blocks.* as in torchvision.
  for (auto& item : pyramid_->named_children()) register_module(item.key(), item.value());
}

std::vector<at::Tensor> FPN::Forward(const BackboneFeatures& features) {
  std::vector<at::Tensor> inputs;
  for (int s : stages_) inputs.push_back(features.stages[s]);
  return pyramid_->forward(inputs);
}

namespace {
SPNAS_REGISTER_PLUGIN(NeckRegistry, FPN);
}  // namespace

}  // namespace spnas
