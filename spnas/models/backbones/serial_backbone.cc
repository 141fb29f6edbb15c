#include "spnas/models/backbones/serial_backbone.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>

namespace spnas {

namespace F = torch::nn::functional;

Status CheckSerialCode(const std::string& code) {
  if (code.empty()) return InvalidArgumentError("serial code is empty");
  for (char c : code) {
    if (c != '1' && c != '2' && c != '-') {
      return InvalidArgumentError("serial code '", code, "' has '", std::string(1, c),
                                  "': only '1' (a block), '2' (a block that doubles the width) and '-' "
                                  "(a new stage) are allowed");
    }
  }
  if (code.front() == '-' || code.back() == '-' || code.find("--") != std::string::npos) {
    return InvalidArgumentError("serial code '", code, "' has an empty stage: every stage needs a block");
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> ParseSerialCode(const std::string& code) {
  SPNAS_RETURN_IF_ERROR(CheckSerialCode(code));
  std::vector<std::string> stages(1);
  int blocks = 0;
  for (char c : code) {
    if (c == '-') {
      stages.emplace_back();
    } else {
      stages.back() += c;
      ++blocks;
    }
  }
  if (stages.size() < 4 || stages.size() > 7) {
    return InvalidArgumentError("serial code '", code, "' has ", stages.size(), " stages; 4 to 7 are allowed");
  }
  if (blocks < 8 || blocks > 60) {
    return InvalidArgumentError("serial code '", code, "' has ", blocks, " blocks; 8 to 60 are allowed");
  }
  return stages;
}

Status CheckParallelCode(const std::vector<int>& code, int stages) {
  if (static_cast<int>(code.size()) != stages) {
    return InvalidArgumentError("parallel code has ", code.size(), " entries but the backbone has ", stages,
                                " stages; give one K per stage, e.g. [0, 1, 0, 0]");
  }
  for (int k : code) {
    if (k < 0 || k > 8) return InvalidArgumentError("parallel code values must be in 0..8, got ", k);
  }
  return Status::Ok();
}

namespace {

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t groups = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).groups(groups).bias(false));
}

// A Sequential(conv, BatchNorm2d) (a downsample, a connection) with the statistics of `pass`.
at::Tensor ForwardConvNorm(torch::nn::Sequential conv_norm, const at::Tensor& x, int pass) {
  return conv_norm[1]->as<BatchNorm2dImpl>()->ForwardPass(conv_norm[0]->as<torch::nn::Conv2dImpl>()->forward(x), pass);
}

}  // namespace

ResidualBlockImpl::ResidualBlockImpl(const BlockConfig& config, const BlockSpec& spec)
    : bottleneck_(config.type != BASIC), out_channels_(spec.planes * config.expansion()) {
  if (bottleneck_) {
    const int64_t width = static_cast<int64_t>(spec.planes * (config.base_width / 64.0)) * config.groups;
    conv1_ = register_module("conv1", Conv(spec.in_channels, width, 1, 1, 0));
    bn1_ = register_module("bn1", BatchNorm2d(width));
    conv2_ = register_module("conv2", Conv(width, width, 3, spec.stride, 1, config.groups));
    bn2_ = register_module("bn2", BatchNorm2d(width));
    conv3_ = register_module("conv3", Conv(width, out_channels_, 1, 1, 0));
    bn3_ = register_module("bn3", BatchNorm2d(out_channels_));
  } else {
    conv1_ = register_module("conv1", Conv(spec.in_channels, spec.planes, 3, spec.stride, 1));
    bn1_ = register_module("bn1", BatchNorm2d(spec.planes));
    conv2_ = register_module("conv2", Conv(spec.planes, spec.planes, 3, 1, 1));
    bn2_ = register_module("bn2", BatchNorm2d(spec.planes));
  }
  if (spec.stride != 1 || spec.in_channels != out_channels_) {
    downsample_ = register_module(
        "downsample",
        torch::nn::Sequential(Conv(spec.in_channels, out_channels_, 1, spec.stride, 0), BatchNorm2d(out_channels_)));
  }
}

at::Tensor ResidualBlockImpl::ForwardPass(const at::Tensor& x, int pass) {
  at::Tensor out = bn1_->ForwardPass(conv1_->forward(x), pass).relu_();
  out = bn2_->ForwardPass(conv2_->forward(out), pass);
  if (bottleneck_) out = bn3_->ForwardPass(conv3_->forward(out.relu_()), pass);
  const at::Tensor identity = downsample_ ? ForwardConvNorm(downsample_, x, pass) : x;
  return (out + identity).relu_();
}

torch::nn::Sequential MakeStage(const BlockConfig& config, const std::vector<BlockSpec>& blocks) {
  torch::nn::Sequential stage;
  for (const BlockSpec& spec : blocks) stage->push_back(ResidualBlock(config, spec));
  return stage;
}

at::Tensor ForwardStage(const torch::nn::Sequential& stage, at::Tensor x, int pass) {
  for (auto& block : *stage.ptr()) x = block.get<ResidualBlockImpl>().ForwardPass(x, pass);
  return x;
}

void InitResNetWeights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

void SerialBackbone::SetDefaults(Options* o) {
  if (!o->has_stem_width()) o->set_stem_width(64);
  if (o->block() == RESNEXT) {
    if (!o->has_groups()) o->set_groups(32);
    if (!o->has_base_width()) o->set_base_width(4);
  }
}

Status SerialBackbone::ValidateOptions(const Options& options) {
  SPNAS_RETURN_IF_ERROR(ParseSerialCode(options.code()).status());
  if (options.stem_width() <= 0) {
    return InvalidArgumentError("stem_width must be > 0, got ", options.stem_width());
  }
  if ((options.has_groups() || options.has_base_width()) && options.block() != RESNEXT) {
    return InvalidArgumentError("groups and base_width apply to block RESNEXT only");
  }
  if (options.block() == RESNEXT && options.groups() <= 0) return InvalidArgumentError("groups must be > 0");
  if (options.block() == RESNEXT && options.base_width() <= 0) return InvalidArgumentError("base_width must be > 0");
  if (options.has_trainable_stages() && options.trainable_stages() < 0) {
    return InvalidArgumentError("trainable_stages must be >= 0");
  }
  if (!options.parallel_code().empty()) {
    SPNAS_ASSIGN_OR_RETURN(const auto stages, ParseSerialCode(options.code()));
    const std::vector<int> code(options.parallel_code().begin(), options.parallel_code().end());
    SPNAS_RETURN_IF_ERROR(CheckParallelCode(code, static_cast<int>(stages.size())));
  }
  return Status::Ok();
}

SerialBackbone::SerialBackbone(const Options& options_in)
    : SerialBackbone(OptionsWithDefaults<SerialBackbone>(options_in), 0) {}

SerialBackbone::SerialBackbone(const Options& options, int)
    : code_(options.code()),
      frozen_norm_(options.norm() == FROZEN_BATCH_NORM),
      stem_width_(options.stem_width()),
      per_pass_statistics_(options.pass_statistics() == PER_PASS) {
  block_.type = options.block();
  if (block_.type == RESNEXT) {
    block_.groups = options.groups();
    block_.base_width = options.base_width();
  }
  const std::vector<std::string> stages = ValueOrThrow(ParseSerialCode(code_));
  conv1_ = register_module("conv1", Conv(3, stem_width_, 7, 2, 3));
  bn1_ = register_module("bn1", BatchNorm2d(stem_width_));
  int64_t in_channels = stem_width_;
  int64_t planes = stem_width_;
  for (size_t s = 0; s < stages.size(); ++s) {
    std::vector<BlockSpec> blocks;
    for (size_t b = 0; b < stages[s].size(); ++b) {
      if (stages[s][b] == '2') planes *= 2;
      blocks.push_back(BlockSpec{in_channels, planes, (s > 0 && b == 0) ? 2 : 1});
      in_channels = planes * block_.expansion();
    }
    stage_channels_.push_back(in_channels);
    stages_.push_back(register_module("layer" + std::to_string(s + 1), MakeStage(block_, blocks)));
  }
  parallel_code_.assign(options.parallel_code().begin(), options.parallel_code().end());
  parallel_code_.resize(stages.size(), 0);
  connections_.assign(stages.size(), torch::nn::Sequential(nullptr));
  for (size_t s = 0; s < stages.size(); ++s) {
    if (parallel_code_[s] == 0) continue;
    // Maps the stage's output back to its input's width (the passes' outputs feed the stage's
    // input again).
    const int64_t input = s == 0 ? stem_width_ : stage_channels_[s - 1];
    connections_[s] =
        register_module("connect" + std::to_string(s + 1),
                        torch::nn::Sequential(Conv(stage_channels_[s], input, 1, 1, 0), BatchNorm2d(input)));
    if (!per_pass_statistics_) continue;
    // The stage runs K + 1 times (trunk: its own statistics; pass m: set m + 1), the
    // connection K times (pass m: set m).
    for (auto& m : stages_[s]->modules(/*include_self=*/false)) {
      if (auto* bn = m->as<BatchNorm2dImpl>()) bn->AddPassStatistics(parallel_code_[s]);
    }
    connections_[s][1]->as<BatchNorm2dImpl>()->AddPassStatistics(parallel_code_[s] - 1);
  }
  InitResNetWeights(*this);
  {
    // Gamma 0: the connections add nothing at creation, so a parallel network first computes
    // exactly its serial network and learns to use the extra passes.
    torch::NoGradGuard no_grad;
    for (auto& connection : connections_) {
      if (connection) connection[1]->as<torch::nn::BatchNorm2d>()->weight.zero_();
    }
  }

  // Freeze the stem and the first stages when only the top ones train (torchvision's
  // trainable_layers); frozen BatchNorm freezes every BatchNorm.
  const int num_stages = static_cast<int>(stages_.size());
  const int trainable =
      options.has_trainable_stages() ? std::min(options.trainable_stages(), num_stages + 1) : num_stages + 1;
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    bool train = false;
    for (int s = num_stages - trainable + 1; s <= num_stages; ++s) {
      train |= name.rfind("layer" + std::to_string(s) + ".", 0) == 0;
    }
    if (trainable == num_stages + 1) train |= name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0;
    if (frozen_norm_ && name.find("bn") != std::string::npos) train = false;
    if (frozen_norm_ && name.find("downsample.1.") != std::string::npos) train = false;
    // New layers that start at zero: frozen, they would never contribute.
    train |= name.rfind("connect", 0) == 0;
    item.value().set_requires_grad(train);
  }
  train(true);
}

void SerialBackbone::train(bool on) {
  Backbone::train(on);
  if (!frozen_norm_) return;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) bn->eval();
  }
}

BackboneFeatures SerialBackbone::Forward(const at::Tensor& images) {
  BackboneFeatures features;
  at::Tensor x = bn1_->forward(conv1_->forward(images)).relu_();
  features.stem = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  x = features.stem;
  // The parallel structure as the SP-NAS authors built it: the K extra passes of stage s run
  // from the last to the first; pass m reads pass m of the previous parallel stage (else its
  // last pass, else the stage input) plus the connection of pass m+1's output; the trunk then
  // reads its input plus the connection of pass 0's output.
  std::vector<at::Tensor> previous_passes;
  for (size_t s = 0; s < stages_.size(); ++s) {
    const int k = parallel_code_[s];
    std::vector<at::Tensor> passes(k);
    at::Tensor fused;  // undefined: nothing to add
    for (int m = k - 1; m >= 0; --m) {
      const at::Tensor& input =
          previous_passes.empty() ? x : previous_passes[std::min<size_t>(m, previous_passes.size() - 1)];
      passes[m] = ForwardStage(stages_[s], fused.defined() ? input + fused : input, per_pass_statistics_ ? m + 1 : 0);
      fused = ForwardConvNorm(connections_[s], passes[m], per_pass_statistics_ ? m : 0);
      if (fused.sizes().slice(2) != x.sizes().slice(2)) {
        fused = F::interpolate(
            fused, F::InterpolateFuncOptions().size(std::vector<int64_t>{x.size(2), x.size(3)}).mode(torch::kNearest));
      }
    }
    previous_passes = std::move(passes);
    x = ForwardStage(stages_[s], fused.defined() ? x + fused : x, 0);
    features.stages.push_back(x);
  }
  return features;
}

StatusOr<std::pair<std::string, BlockType>> ResNetCode(int depth) {
  auto stage = [](char first, int blocks) { return std::string(1, first) + std::string(blocks - 1, '1'); };
  auto code = [&](int a, int b, int c, int d) {
    return stage('1', a) + "-" + stage('2', b) + "-" + stage('2', c) + "-" + stage('2', d);
  };
  switch (depth) {
    case 18:
      return std::make_pair(code(2, 2, 2, 2), BASIC);
    case 34:
      return std::make_pair(code(3, 4, 6, 3), BASIC);
    case 50:
      return std::make_pair(code(3, 4, 6, 3), BOTTLENECK);
    case 101:
      return std::make_pair(code(3, 4, 23, 3), BOTTLENECK);
    case 152:
      return std::make_pair(code(3, 8, 36, 3), BOTTLENECK);
    default:
      return InvalidArgumentError("ResNet depth must be 18, 34, 50, 101 or 152, got ", depth);
  }
}

StatusOr<std::string> SerialCodeOfBackbone(const PluginConfig& backbone) {
  if (backbone.type() == "ResNet") {
    ResNetOptions resnet;
    backbone.options().UnpackTo(&resnet);
    SPNAS_ASSIGN_OR_RETURN(auto code, ResNetCode(resnet.depth()));
    return code.first;
  }
  if (backbone.type() != "SerialBackbone") {
    return FailedPreconditionError("backbone '", backbone.type(),
                                   "' has no serial code (SerialBackbone and ResNet have)");
  }
  SerialBackboneOptions serial;
  backbone.options().UnpackTo(&serial);
  return serial.code();
}

Status SetSerialCodeOfBackbone(PluginConfig* backbone, const std::string& code) {
  if (backbone->type() != "SerialBackbone") {
    return FailedPreconditionError("backbone '", backbone->type(),
                                   "' has no serial code to change (a SerialBackbone has)");
  }
  SPNAS_RETURN_IF_ERROR(ParseSerialCode(code).status());
  SerialBackboneOptions serial;
  backbone->options().UnpackTo(&serial);
  serial.set_code(code);
  // A parallel structure keeps its K per stage; a stage added or removed has none.
  if (!serial.parallel_code().empty()) serial.mutable_parallel_code()->Resize(ParseSerialCode(code)->size(), 0);
  backbone->mutable_options()->PackFrom(serial);
  return Status::Ok();
}

namespace {
template <typename Options>
PluginConfig WithoutFreezing(const PluginConfig& backbone) {
  Options o;
  backbone.options().UnpackTo(&o);
  o.set_norm(BATCH_NORM);
  o.clear_trainable_stages();
  PluginConfig result = backbone;
  result.mutable_options()->PackFrom(o);
  return result;
}
}  // namespace

PluginConfig FullyTrainableBackbone(const PluginConfig& backbone) {
  if (backbone.type() == "SerialBackbone") return WithoutFreezing<SerialBackboneOptions>(backbone);
  if (backbone.type() == "ResNet") return WithoutFreezing<ResNetOptions>(backbone);
  return backbone;
}

Status SetParallelCodeOfBackbone(PluginConfig* backbone, const std::vector<int>& code) {
  if (backbone->type() != "SerialBackbone") {
    return FailedPreconditionError("backbone '", backbone->type(),
                                   "' has no parallel structure (a SerialBackbone has; write a ResNet as the "
                                   "SerialBackbone of its code)");
  }
  SerialBackboneOptions serial;
  backbone->options().UnpackTo(&serial);
  SPNAS_ASSIGN_OR_RETURN(const auto stages, ParseSerialCode(serial.code()));
  SPNAS_RETURN_IF_ERROR(CheckParallelCode(code, static_cast<int>(stages.size())));
  serial.clear_parallel_code();
  for (int k : code) serial.add_parallel_code(k);
  backbone->mutable_options()->PackFrom(serial);
  return Status::Ok();
}

namespace {

// A torchvision ResNet by depth: SerialBackbone with the depth's code.
class ResNet : public SerialBackbone {
 public:
  using Options = ResNetOptions;
  explicit ResNet(const Options& options) : SerialBackbone(ToSerial(options)) {}

  static Status ValidateOptions(const Options& options) {
    SPNAS_RETURN_IF_ERROR(ResNetCode(options.depth()).status());
    if ((options.has_groups() || options.has_base_width()) && options.depth() < 50) {
      return InvalidArgumentError("groups and base_width (ResNeXt) need depth 50 or more, got ", options.depth());
    }
    return SerialBackbone::ValidateOptions(ToSerial(options));
  }

 private:
  static SerialBackboneOptions ToSerial(const Options& options) {
    SerialBackboneOptions serial;
    auto code = ResNetCode(options.depth());
    if (code.ok()) {
      serial.set_code(code->first);
      serial.set_block(code->second);
    }
    if (options.has_groups() || options.has_base_width()) {
      serial.set_block(RESNEXT);
      if (options.has_groups()) serial.set_groups(options.groups());
      if (options.has_base_width()) serial.set_base_width(options.base_width());
    }
    serial.set_norm(options.norm());
    if (options.has_trainable_stages()) serial.set_trainable_stages(options.trainable_stages());
    SerialBackbone::SetDefaults(&serial);
    return serial;
  }
};

SPNAS_REGISTER_PLUGIN(BackboneRegistry, SerialBackbone);
SPNAS_REGISTER_PLUGIN(BackboneRegistry, ResNet);

}  // namespace
}  // namespace spnas
