// FashionMnist: the Fashion-MNIST classification set, upsampled to image_size with 3 channels so
// a detection backbone's stem takes it as it is.
#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include <sstream>

#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/idx.h"

namespace spnas {
namespace {

class FashionMnist : public ClassificationDataset {
 public:
  using Options = FashionMnistOptions;
  explicit FashionMnist(const Options& options) : options_(options) {}
  static void SetDefaults(Options* o) {
    if (!o->has_image_size()) o->set_image_size(32);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.split() != "train" && o.split() != "test") {
      return InvalidArgumentError("split must be \"train\" or \"test\", got \"", o.split(), "\"");
    }
    if (o.has_num_images() && o.num_images() <= 0) return InvalidArgumentError("num_images must be > 0");
    if (o.image_size() < 28) return InvalidArgumentError("image_size must be >= 28");
    return Status::Ok();
  }

  Status Load() override {
    SPNAS_ASSIGN_OR_RETURN(source_, LoadFashionMnist(options_.root(), options_.split() == "train" ? "train" : "t10k"));
    size_ = options_.has_num_images() ? std::min<int64_t>(options_.num_images(), source_->images.count)
                                      : source_->images.count;
    return Status::Ok();
  }
  int64_t Size() const override { return size_; }
  std::vector<std::string> ClassNames() const override {
    return std::vector<std::string>(std::begin(kFashionMnistClasses), std::end(kFashionMnistClasses));
  }
  std::string Statistics() const override {
    std::vector<int64_t> counts(10, 0);
    for (int64_t i = 0; i < size_; ++i) ++counts[source_->labels[i]];
    std::ostringstream os;
    os << size_ << " images of 28x28 (given as " << options_.image_size() << "x" << options_.image_size()
       << "x3); per class:";
    for (int c = 0; c < 10; ++c) os << " " << kFashionMnistClasses[c] << "=" << counts[c];
    return os.str();
  }

  ClassificationSample Get(int64_t index) const override {
    const IdxImages& images = source_->images;
    at::Tensor image =
        at::from_blob(const_cast<uint8_t*>(images.image(index)), {1, 1, images.rows, images.cols}, at::kByte)
            .to(at::kFloat)
            .div_(255);
    namespace F = torch::nn::functional;
    const int64_t size = options_.image_size();
    if (size != images.rows) {
      image = F::interpolate(image, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{size, size})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
    }
    return {image.squeeze(0).expand({3, size, size}).contiguous(), source_->labels[index]};
  }

 private:
  Options options_;
  int64_t size_ = 0;
  std::shared_ptr<const FashionMnistSplit> source_;
};

SPNAS_REGISTER_PLUGIN(DatasetRegistry, FashionMnist);

}  // namespace
}  // namespace spnas
