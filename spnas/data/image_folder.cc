// ImageFolder: classification images in root/<class>/*.{jpg,jpeg,png}, classes in name order.
#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/image_io.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;

class ImageFolder : public ClassificationDataset {
 public:
  using Options = ImageFolderOptions;
  explicit ImageFolder(const Options& options) : options_(options) {}
  static void SetDefaults(Options* o) {
    if (!o->has_image_size()) o->set_image_size(224);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.root().empty()) return InvalidArgumentError("root is required");
    if (o.image_size() < 8) return InvalidArgumentError("image_size must be >= 8");
    return Status::Ok();
  }

  Status Load() override {
    if (!fs::is_directory(options_.root())) return NotFoundError("image folder '", options_.root(), "' does not exist");
    for (const auto& entry : fs::directory_iterator(options_.root())) {
      if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
    }
    std::sort(classes_.begin(), classes_.end());
    if (classes_.empty()) return InvalidArgumentError("image folder '", options_.root(), "' has no class folders");
    for (size_t c = 0; c < classes_.size(); ++c) {
      std::vector<std::string> files;
      for (const auto& entry : fs::directory_iterator(fs::path(options_.root()) / classes_[c])) {
        std::string ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(entry.path().string());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) samples_.emplace_back(f, static_cast<int64_t>(c));
    }
    if (options_.has_max_images() && static_cast<int64_t>(samples_.size()) > options_.max_images()) {
      samples_.resize(options_.max_images());
    }
    return Status::Ok();
  }
  int64_t Size() const override { return static_cast<int64_t>(samples_.size()); }
  std::vector<std::string> ClassNames() const override { return classes_; }
  std::string Statistics() const override {
    std::vector<int64_t> counts(classes_.size(), 0);
    for (const auto& [file, label] : samples_) ++counts[label];
    std::ostringstream os;
    os << samples_.size() << " images in " << classes_.size() << " classes;";
    for (size_t c = 0; c < classes_.size() && c < 20; ++c) os << " " << classes_[c] << "=" << counts[c];
    return os.str();
  }

  ClassificationSample Get(int64_t index) const override {
    const auto& [file, label] = samples_.at(index);
    StatusOr<at::Tensor> image = ReadImage(file);
    if (!image.ok()) throw std::runtime_error(image.status().message());
    // Shorter side to image_size, then a centre crop.
    namespace F = torch::nn::functional;
    const int64_t size = options_.image_size();
    const int64_t h = image->size(1), w = image->size(2);
    const double scale = static_cast<double>(size) / std::min(h, w);
    const int64_t nh = std::max<int64_t>(size, std::llround(h * scale)),
                  nw = std::max<int64_t>(size, std::llround(w * scale));
    at::Tensor resized =
        F::interpolate(
            image->unsqueeze(0),
            F::InterpolateFuncOptions().size(std::vector<int64_t>{nh, nw}).mode(torch::kBilinear).align_corners(false))
            .squeeze(0);
    const int64_t top = (nh - size) / 2, left = (nw - size) / 2;
    return {resized.narrow(1, top, size).narrow(2, left, size).contiguous(), label};
  }

 private:
  Options options_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> samples_;
};

SPNAS_REGISTER_PLUGIN(DatasetRegistry, ImageFolder);

}  // namespace
}  // namespace spnas
