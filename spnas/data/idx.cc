#include "spnas/data/idx.h"

#include <zlib.h>

#include <map>
#include <mutex>

namespace spnas {

const char* const kFashionMnistClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

namespace {

// Far above Fashion-MNIST's largest file (47 MB): anything bigger is not an IDX file of ours
// (or is a gzip bomb), and must not exhaust memory.
constexpr size_t kMaxIdxBytes = size_t{512} << 20;

StatusOr<std::vector<uint8_t>> ReadGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return NotFoundError("cannot open '", path, "' (install dataset-fashion-mnist?)");
  std::vector<uint8_t> data;
  uint8_t buffer[1 << 16];
  int n;
  while ((n = gzread(f, buffer, sizeof(buffer))) > 0 && data.size() <= kMaxIdxBytes) {
    data.insert(data.end(), buffer, buffer + n);
  }
  const bool failed = n < 0;
  gzclose(f);
  if (failed) return InvalidArgumentError("'", path, "' is not a valid gzip file");
  if (data.size() > kMaxIdxBytes) {
    return InvalidArgumentError("'", path, "' holds more than ", kMaxIdxBytes >> 20, " MiB: not an IDX file");
  }
  return data;
}

uint32_t BigEndian(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }

}  // namespace

StatusOr<IdxImages> ReadIdxImages(const std::string& path) {
  SPNAS_ASSIGN_OR_RETURN(std::vector<uint8_t> data, ReadGzip(path));
  if (data.size() < 16 || BigEndian(data.data()) != 0x00000803) {
    return InvalidArgumentError("'", path, "' is not an IDX image file (magic 0x00000803)");
  }
  IdxImages images;
  images.count = BigEndian(data.data() + 4);
  images.rows = BigEndian(data.data() + 8);
  images.cols = BigEndian(data.data() + 12);
  // The header's sizes are 32-bit each; their product is checked, not trusted.
  uint64_t pixels = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(images.count), static_cast<uint64_t>(images.rows), &pixels) ||
      __builtin_mul_overflow(pixels, static_cast<uint64_t>(images.cols), &pixels) || pixels != data.size() - 16) {
    return InvalidArgumentError("'", path, "' has ", data.size(), " bytes, but its header claims ", images.count,
                                " images of ", images.rows, "x", images.cols);
  }
  images.pixels.assign(data.begin() + 16, data.end());
  return images;
}

StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path) {
  SPNAS_ASSIGN_OR_RETURN(std::vector<uint8_t> data, ReadGzip(path));
  if (data.size() < 8 || BigEndian(data.data()) != 0x00000801) {
    return InvalidArgumentError("'", path, "' is not an IDX label file (magic 0x00000801)");
  }
  const size_t count = BigEndian(data.data() + 4);
  if (data.size() != 8 + count) return InvalidArgumentError("'", path, "' is truncated");
  return std::vector<uint8_t>(data.begin() + 8, data.end());
}

StatusOr<std::shared_ptr<const FashionMnistSplit>> LoadFashionMnist(const std::string& root, const std::string& split) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::shared_ptr<const FashionMnistSplit>>();
  const std::string dir = root.empty() ? kFashionMnistRoot : root;
  const std::string key = dir + "|" + split;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  auto loaded = std::make_shared<FashionMnistSplit>();
  SPNAS_ASSIGN_OR_RETURN(loaded->images, ReadIdxImages(dir + "/" + split + "-images-idx3-ubyte.gz"));
  SPNAS_ASSIGN_OR_RETURN(loaded->labels, ReadIdxLabels(dir + "/" + split + "-labels-idx1-ubyte.gz"));
  if (static_cast<int64_t>(loaded->labels.size()) != loaded->images.count) {
    return InvalidArgumentError("Fashion-MNIST ", split, ": ", loaded->images.count, " images but ",
                                loaded->labels.size(), " labels");
  }
  (*cache)[key] = loaded;
  return std::shared_ptr<const FashionMnistSplit>(loaded);
}

}  // namespace spnas
