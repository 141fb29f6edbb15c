// FPN: torchvision's FeaturePyramidNetwork + LastLevelMaxPool, with its parameter names
// (inner_blocks.{i}.0, layer_blocks.{i}.0), so torchvision FPN weights load by name.
#ifndef SPNAS_MODELS_NECKS_FPN_H_
#define SPNAS_MODELS_NECKS_FPN_H_

#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"

namespace spnas {

// The pyramid over the levels the FPN neck selects.
class FeaturePyramidImpl : public torch::nn::Module {
 public:
  FeaturePyramidImpl(const std::vector<int64_t>& in_channels, int64_t out_channels);
  // Levels P_i for the inputs (finest first), plus the max-pooled extra level.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs);

 private:
  std::vector<torch::nn::Sequential> inner_, layer_;
};
TORCH_MODULE(FeaturePyramid);

class FPN : public Neck {
 public:
  using Options = FPNOptions;
  FPN(const Options& options, const Backbone& backbone);
  static void SetDefaults(Options* options);
  static Status ValidateOptions(const Options& options);

  std::vector<at::Tensor> Forward(const BackboneFeatures& features) override;
  int64_t OutChannels() const override { return out_channels_; }
  int64_t NumRoiLevels() const override { return static_cast<int64_t>(stages_.size()); }

 private:
  int64_t out_channels_;
  std::vector<int> stages_;  // 0-based backbone stages fed to the pyramid
  FeaturePyramid pyramid_{nullptr};
};

}  // namespace spnas

#endif  // SPNAS_MODELS_NECKS_FPN_H_
