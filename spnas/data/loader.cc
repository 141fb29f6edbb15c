#include "spnas/data/loader.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

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
  const int64_t global = o.batch_size * o.ranks;
  return o.drop_last ? samples / global : (samples + global - 1) / global;
}

}  // namespace

BatchShare ShareOfBatch(int64_t samples, const LoaderOptions& o, int64_t b, int rank) {
  const int64_t global = o.batch_size * o.ranks;
  const int64_t first = b * global, size = std::min(global, samples - first);
  // Rounded up: the first ranks get the extra samples, so rank 0's share is never empty.
  BatchShare share{first + (rank * size + o.ranks - 1) / o.ranks, first + ((rank + 1) * size + o.ranks - 1) / o.ranks};
  if (share.begin == share.end) share = {first, first + 1, true};
  return share;
}

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
        batch.upload = std::make_shared<DeviceUpload>(o.device);
        const BatchShare share = ShareOfBatch(static_cast<int64_t>(order->size()), o, b, o.rank);
        batch.padding = share.padding;
        for (int64_t k = share.begin; k < share.end; ++k) {
          DetectionSample s = dataset->Get((*order)[k]);
          if (o.horizontal_flip && (SplitMix64(o.seed ^ SplitMix64(epoch * 1000003ULL + k)) & 1)) FlipHorizontal(&s);
          if (o.image_generators) {
            s.target.generator = at::make_generator<at::CPUGeneratorImpl>(
                SplitMix64(SplitMix64(o.seed + 0x5eed) ^ SplitMix64(epoch * 1000003ULL + k)));
          }
          batch.images.push_back(batch.upload->Copy(s.image));
          batch.targets.push_back(
              {batch.upload->Copy(s.target.boxes), batch.upload->Copy(s.target.labels), s.target.generator});
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
        const BatchShare share = ShareOfBatch(static_cast<int64_t>(order->size()), o, b, o.rank);
        for (int64_t k = share.begin; k < share.end; ++k) {
          ClassificationSample s = dataset->Get((*order)[k]);
          if (o.horizontal_flip && (SplitMix64(o.seed ^ SplitMix64(epoch * 1000003ULL + k)) & 1))
            s.image = s.image.flip({2});
          images.push_back(s.image);
          labels.push_back(s.label);
        }
        auto upload = std::make_shared<DeviceUpload>(o.device);
        return ClassificationBatch{upload->Copy(at::stack(images)), upload->Copy(at::tensor(labels, at::kLong)),
                                   share.padding, upload};
      },
      o.workers, 2 * std::max(1, o.workers), first);
}

}  // namespace spnas
