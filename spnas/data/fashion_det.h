// FashionDet: detection scenes composed from Fashion-MNIST items (the embedded default dataset).
#ifndef SPNAS_DATA_FASHION_DET_H_
#define SPNAS_DATA_FASHION_DET_H_

#include <memory>

#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/idx.h"

namespace spnas {

class FashionDet : public DetectionDataset {
 public:
  using Options = FashionDetOptions;
  explicit FashionDet(const Options& options);
  static void SetDefaults(Options* options);
  static Status ValidateOptions(const Options& options);

  Status Load() override;
  int64_t Size() const override { return num_images_; }
  std::vector<std::string> ClassNames() const override;
  std::string Statistics() const override { return DetectionStatistics(*this); }
  // Composes scene `index`: the same scene for the same (seed, split, index), on any thread.
  DetectionSample Get(int64_t index) const override;

 private:
  Options options_;
  int64_t num_images_;
  std::shared_ptr<const FashionMnistSplit> source_;
};

}  // namespace spnas

#endif  // SPNAS_DATA_FASHION_DET_H_
