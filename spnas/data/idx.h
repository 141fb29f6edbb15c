// Reading the IDX files of (Fashion-)MNIST, gzip-compressed or not.
#ifndef SPNAS_DATA_IDX_H_
#define SPNAS_DATA_IDX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spnas/core/status.h"

namespace spnas {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
  const uint8_t* image(int64_t i) const { return pixels.data() + i * rows * cols; }
};

StatusOr<IdxImages> ReadIdxImages(const std::string& path);
StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path);

// The Fashion-MNIST split ("train" or "t10k") from `root`, read once per process and shared.
struct FashionMnistSplit {
  IdxImages images;
  std::vector<uint8_t> labels;
};
StatusOr<std::shared_ptr<const FashionMnistSplit>> LoadFashionMnist(const std::string& root, const std::string& split);

extern const char* const kFashionMnistClasses[10];
constexpr char kFashionMnistRoot[] = "/usr/share/datasets/fashion-mnist";

}  // namespace spnas

#endif  // SPNAS_DATA_IDX_H_
