// TwoMLPHead: torchvision's box head, flatten -> fc6 -> ReLU -> fc7 -> ReLU.
#include <torch/nn/modules/linear.h>

#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"

namespace spnas {
namespace {

class TwoMLPHead : public Head {
 public:
  using Options = TwoMLPHeadOptions;
  TwoMLPHead(const Options& options, int64_t channels, int64_t height, int64_t width)
      : size_(options.representation_size()) {
    fc6_ = register_module("fc6", torch::nn::Linear(channels * height * width, size_));
    fc7_ = register_module("fc7", torch::nn::Linear(size_, size_));
  }
  static void SetDefaults(Options* options) {
    if (!options->has_representation_size()) options->set_representation_size(1024);
  }
  static Status ValidateOptions(const Options& options) {
    if (options.representation_size() <= 0) {
      return InvalidArgumentError("representation_size must be > 0, got ", options.representation_size());
    }
    return Status::Ok();
  }
  at::Tensor Forward(const at::Tensor& x) override { return fc7_->forward(fc6_->forward(x.flatten(1)).relu()).relu(); }
  int64_t OutFeatures() const override { return size_; }

 private:
  int64_t size_;
  torch::nn::Linear fc6_{nullptr}, fc7_{nullptr};
};

SPNAS_REGISTER_PLUGIN(HeadRegistry, TwoMLPHead);

}  // namespace
}  // namespace spnas
