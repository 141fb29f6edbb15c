#include "spnas/data/loader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "spnas/core/random.h"

namespace spnas {
namespace {

int64_t Samples(int64_t size, const LoaderOptions& o) {
  return o.max_samples > 0 ? std::min(size, o.max_samples) : size;
}

int64_t Batches(int64_t samples, const LoaderOptions& o) {
  return o.drop_last ? samples / o.batch_size : (samples + o.batch_size - 1) / o.batch_size;
}

}  // namespace

std::vector<int64_t> EpochOrder(int64_t n, const LoaderOptions& options, int epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) {
    std::mt19937_64 rng(SplitMix64(options.seed * 7919 + static_cast<uint64_t>(epoch)));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

void FlipHorizontal(DetectionSample* s) {
  const int64_t width = s->image.size(2);
  s->image = s->image.flip({2});
  auto flip = [&](at::Tensor& boxes) {
    if (!boxes.defined() || boxes.numel() == 0) return;
    boxes =
        at::stack({width - boxes.select(1, 2), boxes.select(1, 1), width - boxes.select(1, 0), boxes.select(1, 3)}, 1);
  };
  flip(s->target.boxes);
  flip(s->crowd_boxes);
}

int64_t DetectionLoader::NumBatches() const { return Batches(Samples(dataset_.Size(), options_), options_); }

std::unique_ptr<PrefetchLoader<DetectionBatch>> DetectionLoader::Epoch(int epoch, int64_t first) const {
  auto order = std::make_shared<std::vector<int64_t>>(EpochOrder(dataset_.Size(), options_, epoch));
  order->resize(Samples(dataset_.Size(), options_));
  const LoaderOptions o = options_;
  const DetectionDataset* dataset = &dataset_;
  return std::make_unique<PrefetchLoader<DetectionBatch>>(
      NumBatches(),
      [order, o, dataset, epoch](int64_t b) {
        DetectionBatch batch;
        const int64_t end = std::min<int64_t>((b + 1) * o.batch_size, order->size());
        for (int64_t k = b * o.batch_size; k < end; ++k) {
          DetectionSample s = dataset->Get((*order)[k]);
          if (o.horizontal_flip && (SplitMix64(o.seed ^ SplitMix64(epoch * 1000003ULL + k)) & 1)) FlipHorizontal(&s);
          batch.images.push_back(s.image.to(o.device));
          batch.targets.push_back(s.target.To(o.device));
          batch.samples.push_back(std::move(s));
        }
        return batch;
      },
      o.workers, 2 * std::max(1, o.workers), first);
}

int64_t ClassificationLoader::NumBatches() const { return Batches(Samples(dataset_.Size(), options_), options_); }

std::unique_ptr<PrefetchLoader<ClassificationBatch>> ClassificationLoader::Epoch(int epoch, int64_t first) const {
  auto order = std::make_shared<std::vector<int64_t>>(EpochOrder(dataset_.Size(), options_, epoch));
  order->resize(Samples(dataset_.Size(), options_));
  const LoaderOptions o = options_;
  const ClassificationDataset* dataset = &dataset_;
  return std::make_unique<PrefetchLoader<ClassificationBatch>>(
      NumBatches(),
      [order, o, dataset, epoch](int64_t b) {
        std::vector<at::Tensor> images;
        std::vector<int64_t> labels;
        const int64_t end = std::min<int64_t>((b + 1) * o.batch_size, order->size());
        for (int64_t k = b * o.batch_size; k < end; ++k) {
          ClassificationSample s = dataset->Get((*order)[k]);
          if (o.horizontal_flip && (SplitMix64(o.seed ^ SplitMix64(epoch * 1000003ULL + k)) & 1))
            s.image = s.image.flip({2});
          images.push_back(s.image);
          labels.push_back(s.label);
        }
        return ClassificationBatch{at::stack(images).to(o.device), at::tensor(labels, at::kLong).to(o.device)};
      },
      o.workers, 2 * std::max(1, o.workers), first);
}

}  // namespace spnas
