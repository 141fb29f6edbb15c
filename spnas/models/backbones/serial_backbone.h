// SerialBackbone: a ResNet-like network described by a serial code (docs/sp_nas.md, serial codes), with
// torchvision's ResNet layout and parameter names (conv1, bn1, layer{i}.{j}.conv1, ...), and
// optionally the parallel structure of SP-NAS (docs/sp_nas.md, parallel search): extra passes of a stage sharing its
// weights, fused through one connection per stage (connect{i}.0 conv, connect{i}.1 BN) and fed
// back into the trunk. By default each pass keeps its own BatchNorm running statistics.
#ifndef SPNAS_MODELS_BACKBONES_SERIAL_BACKBONE_H_
#define SPNAS_MODELS_BACKBONES_SERIAL_BACKBONE_H_

#include <string>
#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "spnas/core/status.h"
#include "spnas/models/batch_norm.h"
#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"

namespace spnas {

// The stages of a serial code ("111-2111" -> {"111", "2111"}), or an error naming the code and
// the rule it breaks: only '1', '2' and '-'; no empty stage; 4-7 stages; 8-60 blocks.
StatusOr<std::vector<std::string>> ParseSerialCode(const std::string& code);
// The same check for a code with any number of stages and blocks (used for child codes).
Status CheckSerialCode(const std::string& code);
// A parallel code for a backbone of `stages` stages: one K per stage, each 0..8.
Status CheckParallelCode(const std::vector<int>& code, int stages);

struct BlockSpec {
  int64_t in_channels;
  int64_t planes;  // width before expansion
  int64_t stride;
};

struct BlockConfig {
  BlockType type = BOTTLENECK;
  int64_t groups = 1;
  int64_t base_width = 64;
  int64_t expansion() const { return type == BASIC ? 1 : 4; }
};

// One residual block, torchvision BasicBlock/Bottleneck layout (stride on the 3x3 conv).
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(const BlockConfig& config, const BlockSpec& spec);
  at::Tensor forward(const at::Tensor& x) { return ForwardPass(x, 0); }
  // With the BatchNorm statistics of `pass` (BatchNorm2dImpl::ForwardPass).
  at::Tensor ForwardPass(const at::Tensor& x, int pass);
  int64_t out_channels() const { return out_channels_; }

 private:
  bool bottleneck_;
  int64_t out_channels_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResidualBlock);

// The blocks of one stage; `in_channels` is the stage input's width.
torch::nn::Sequential MakeStage(const BlockConfig& config, const std::vector<BlockSpec>& blocks);
// A stage of MakeStage run with the BatchNorm statistics of `pass`.
at::Tensor ForwardStage(const torch::nn::Sequential& stage, at::Tensor x, int pass);

class SerialBackbone : public Backbone {
 public:
  using Options = SerialBackboneOptions;
  explicit SerialBackbone(const Options& options);
  static void SetDefaults(Options* options);
  static Status ValidateOptions(const Options& options);

  BackboneFeatures Forward(const at::Tensor& images) override;
  int64_t StemChannels() const override { return stem_width_; }
  std::vector<int64_t> StageChannels() const override { return stage_channels_; }
  void train(bool on = true) override;

  const std::string& code() const { return code_; }

 private:
  SerialBackbone(const Options& options, int);  // options with defaults

  std::string code_;
  BlockConfig block_;
  bool frozen_norm_;
  int64_t stem_width_;
  std::vector<int64_t> stage_channels_;
  torch::nn::Conv2d conv1_{nullptr};
  BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> stages_;
  std::vector<int> parallel_code_;  // K per stage (all zeros: serial)
  bool per_pass_statistics_;
  std::vector<torch::nn::Sequential> connections_;  // per stage; null where K is 0
};

// Initialises like torchvision's ResNet: He-normal (fan_out) convs, BatchNorm weight 1, bias 0.
void InitResNetWeights(torch::nn::Module& module);

// The serial code and block type of a torchvision ResNet depth (18, 34, 50, 101, 152).
StatusOr<std::pair<std::string, BlockType>> ResNetCode(int depth);

// The serial code of a backbone config: a SerialBackbone's code, or a ResNet's by depth.
StatusOr<std::string> SerialCodeOfBackbone(const PluginConfig& backbone);
// Sets the code of a SerialBackbone config (a ResNet's code is fixed by its depth).
Status SetSerialCodeOfBackbone(PluginConfig* backbone, const std::string& code);
// The backbone as a classifier trains it (reignition): plain BatchNorm and every stage trainable,
// whatever the detector froze. Other backbone types are returned unchanged.
PluginConfig FullyTrainableBackbone(const PluginConfig& backbone);
// Sets the parallel code of a SerialBackbone config.
Status SetParallelCodeOfBackbone(PluginConfig* backbone, const std::vector<int>& code);

}  // namespace spnas

#endif  // SPNAS_MODELS_BACKBONES_SERIAL_BACKBONE_H_
