#include "spnas/data/fashion_det.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <random>

#include "spnas/core/random.h"

namespace spnas {
namespace {

struct Box {
  float x1, y1, x2, y2;
  float Area() const { return (x2 - x1) * (y2 - y1); }
};

float Iou(const Box& a, const Box& b) {
  const float w = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float h = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = w * h;
  return inter / (a.Area() + b.Area() - inter);
}

// Bilinear resize of a 28x28 uint8 item to size x size floats in [0, 1] (half-pixel centres).
std::vector<float> ResizeItem(const uint8_t* item, int rows, int cols, int size) {
  std::vector<float> out(size * size);
  const float sy = static_cast<float>(rows) / size, sx = static_cast<float>(cols) / size;
  for (int y = 0; y < size; ++y) {
    const float fy = std::max(0.f, (y + 0.5f) * sy - 0.5f);
    const int y0 = std::min(static_cast<int>(fy), rows - 1), y1 = std::min(y0 + 1, rows - 1);
    const float ly = fy - y0;
    for (int x = 0; x < size; ++x) {
      const float fx = std::max(0.f, (x + 0.5f) * sx - 0.5f);
      const int x0 = std::min(static_cast<int>(fx), cols - 1), x1 = std::min(x0 + 1, cols - 1);
      const float lx = fx - x0;
      const float v = (1 - ly) * ((1 - lx) * item[y0 * cols + x0] + lx * item[y0 * cols + x1]) +
                      ly * ((1 - lx) * item[y1 * cols + x0] + lx * item[y1 * cols + x1]);
      out[y * size + x] = v / 255.f;
    }
  }
  return out;
}

constexpr float kInkThreshold = 0.1f;  // a pixel belongs to the item above this intensity

}  // namespace

void FashionDet::SetDefaults(Options* o) {
  if (!o->has_num_images()) o->set_num_images(1000);
  if (!o->has_canvas_size()) o->set_canvas_size(128);
  if (!o->has_min_items()) o->set_min_items(1);
  if (!o->has_max_items()) o->set_max_items(4);
  if (!o->has_min_item_size()) o->set_min_item_size(20);
  if (!o->has_max_item_size()) o->set_max_item_size(56);
  if (!o->has_max_overlap()) o->set_max_overlap(0.1f);
}

Status FashionDet::ValidateOptions(const Options& o) {
  if (o.split() != "train" && o.split() != "val" && o.split() != "test") {
    return InvalidArgumentError("split must be \"train\", \"val\" or \"test\", got \"", o.split(), "\"");
  }
  const int canvas = o.canvas_size();
  const int min_size = o.min_item_size();
  const int max_size = o.max_item_size();
  const int min_items = o.min_items();
  const int max_items = o.max_items();
  if (o.num_images() <= 0) return InvalidArgumentError("num_images must be > 0");
  if (canvas < 16) return InvalidArgumentError("canvas_size must be >= 16, got ", canvas);
  if (min_size < 8 || min_size > max_size || max_size > canvas) {
    return InvalidArgumentError("item sizes must satisfy 8 <= min_item_size <= max_item_size <= canvas_size, got ",
                                min_size, ", ", max_size, ", ", canvas);
  }
  if (min_items < 0 || min_items > max_items) {
    return InvalidArgumentError("items must satisfy 0 <= min_items <= max_items, got ", min_items, ", ", max_items);
  }
  if (o.max_overlap() < 0 || o.max_overlap() > 1) {
    return InvalidArgumentError("max_overlap must be in [0, 1]");
  }
  return Status::Ok();
}

FashionDet::FashionDet(const Options& options)
    : options_(OptionsWithDefaults<FashionDet>(options)), num_images_(options_.num_images()) {}

Status FashionDet::Load() {
  SPNAS_ASSIGN_OR_RETURN(source_, LoadFashionMnist(options_.root(), options_.split() == "train" ? "train" : "t10k"));
  return Status::Ok();
}

std::vector<std::string> FashionDet::ClassNames() const {
  std::vector<std::string> names = {"__background__"};
  for (const char* c : kFashionMnistClasses) names.push_back(c);
  return names;
}

DetectionSample FashionDet::Get(int64_t index) const {
  const uint64_t salt = options_.split() == "train" ? 1 : options_.split() == "val" ? 2 : 3;
  std::mt19937_64 rng(SplitMix64(SplitMix64(options_.seed() * 4 + salt) + static_cast<uint64_t>(index)));
  const int s = options_.canvas_size();
  std::uniform_real_distribution<float> unit(0.f, 1.f);

  // A dim, noisy background of a random colour. The noise is triangular in [-0.06, 0.06], four
  // 16-bit draws per 64-bit number: normal draws made this the slowest part of a scene.
  std::vector<float> canvas(3 * s * s);
  for (int c = 0; c < 3; ++c) {
    const float base = 0.15f * unit(rng);
    float* plane = canvas.data() + c * s * s;
    for (int i = 0; i < s * s; i += 2) {
      const uint64_t r = rng();
      for (int k = 0; k < 2 && i + k < s * s; ++k) {
        const float a = static_cast<float>((r >> (32 * k)) & 0xFFFF),
                    b = static_cast<float>((r >> (32 * k + 16)) & 0xFFFF);
        plane[i + k] = std::clamp(base + (a + b - 65535.f) * (0.06f / 65535.f), 0.f, 1.f);
      }
    }
  }

  std::vector<Box> boxes;
  std::vector<int64_t> labels;
  const int items = std::uniform_int_distribution<int>(options_.min_items(), options_.max_items())(rng);
  const IdxImages& images = source_->images;
  for (int k = 0; k < items; ++k) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      const int64_t j = std::uniform_int_distribution<int64_t>(0, images.count - 1)(rng);
      const int size = std::uniform_int_distribution<int>(options_.min_item_size(), options_.max_item_size())(rng);
      const int x0 = std::uniform_int_distribution<int>(0, s - size)(rng);
      const int y0 = std::uniform_int_distribution<int>(0, s - size)(rng);
      const std::vector<float> item = ResizeItem(images.image(j), images.rows, images.cols, size);
      // Tight box from the item's pixels.
      int bx1 = size, by1 = size, bx2 = -1, by2 = -1;
      for (int y = 0; y < size; ++y) {
        for (int x = 0; x < size; ++x) {
          if (item[y * size + x] > kInkThreshold) {
            bx1 = std::min(bx1, x), by1 = std::min(by1, y), bx2 = std::max(bx2, x), by2 = std::max(by2, y);
          }
        }
      }
      if (bx2 < bx1 + 1 || by2 < by1 + 1) continue;
      const Box box{static_cast<float>(x0 + bx1), static_cast<float>(y0 + by1), static_cast<float>(x0 + bx2 + 1),
                    static_cast<float>(y0 + by2 + 1)};
      bool overlaps = false;
      for (const Box& other : boxes) overlaps |= Iou(box, other) > options_.max_overlap();
      if (overlaps) continue;
      const float tint[3] = {0.6f + 0.4f * unit(rng), 0.6f + 0.4f * unit(rng), 0.6f + 0.4f * unit(rng)};
      for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < size; ++y) {
          float* row = canvas.data() + c * s * s + (y0 + y) * s + x0;
          for (int x = 0; x < size; ++x) row[x] = std::max(row[x], item[y * size + x] * tint[c]);
        }
      }
      boxes.push_back(box);
      labels.push_back(source_->labels[j] + 1);
      break;
    }
  }

  DetectionSample sample;
  sample.image_id = index;
  sample.image = at::from_blob(canvas.data(), {3, s, s}, at::kFloat).clone();
  std::vector<float> flat;
  for (const Box& b : boxes) flat.insert(flat.end(), {b.x1, b.y1, b.x2, b.y2});
  sample.target.boxes = at::tensor(flat, at::kFloat).reshape({-1, 4});
  sample.target.labels = at::tensor(labels, at::kLong).reshape({-1});
  return sample;
}

namespace {
SPNAS_REGISTER_PLUGIN(DatasetRegistry, FashionDet);
}  // namespace

}  // namespace spnas
