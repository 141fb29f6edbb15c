// Batches of a dataset, made by worker threads ahead of the training loop. The order and the
// augmentations are a function of (seed, epoch), so a run is reproducible.
#ifndef SPNAS_DATA_LOADER_H_
#define SPNAS_DATA_LOADER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <c10/core/Device.h>

#include "spnas/data/dataset.h"
#include "spnas/device/device.h"

namespace spnas {

// Runs make(i) for i = first..n-1 on `workers` threads, at most `prefetch` ahead of the
// consumer, and hands the results out in order. An exception in make() is rethrown by Next().
template <typename Batch>
class PrefetchLoader {
 public:
  PrefetchLoader(int64_t n, std::function<Batch(int64_t)> make, int workers, int prefetch, int64_t first = 0)
      : n_(n), make_(std::move(make)), prefetch_(std::max(1, prefetch)), next_(first), consumed_(first) {
    for (int w = 0; w < std::max(1, workers); ++w) threads_.emplace_back([this] { Work(); });
  }
  ~PrefetchLoader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // The next batch in order; false after the last.
  bool Next(Batch* batch) {
    if (consumed_ >= n_) return false;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_.count(consumed_) > 0 || errors_.count(consumed_) > 0; });
    if (errors_.count(consumed_)) std::rethrow_exception(errors_[consumed_]);
    *batch = std::move(ready_[consumed_]);
    ready_.erase(consumed_++);
    lock.unlock();
    cv_.notify_all();
    if (batch->upload) batch->upload->Ready();  // this thread's stream waits for the copies
    return true;
  }

 private:
  void Work() {
    while (true) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (next_ < n_ && next_ < consumed_ + prefetch_); });
        if (stop_ || next_ >= n_) return;
        i = next_++;
      }
      try {
        Batch b = make_(i);
        std::lock_guard<std::mutex> lock(mu_);
        ready_[i] = std::move(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        errors_[i] = std::current_exception();
      }
      cv_.notify_all();
    }
  }

  int64_t n_;
  std::function<Batch(int64_t)> make_;
  int prefetch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  int64_t next_, consumed_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

struct DetectionBatch {
  std::vector<DetectionSample> samples;  // on the CPU, for the metrics
  std::vector<at::Tensor> images;        // on the loader's device
  std::vector<Target> targets;           // on the loader's device
  // Data parallel: this rank's share of a short last batch is empty, and the batch holds a
  // stand-in (the global batch's first sample) that must count for nothing.
  bool padding = false;
  std::shared_ptr<DeviceUpload> upload;  // the copies to the device, made by a worker
};

struct ClassificationBatch {
  at::Tensor images;     // [N, C, H, W] on the loader's device
  at::Tensor labels;     // [N] on the loader's device
  bool padding = false;  // as in DetectionBatch
  std::shared_ptr<DeviceUpload> upload;
};

struct LoaderOptions {
  int64_t batch_size = 2;
  bool shuffle = false;
  bool horizontal_flip = false;  // with probability 0.5 per sample
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 1;
  int64_t max_samples = 0;  // 0 = the whole dataset
  // Where the batches go: the worker threads copy them there, ahead of the training loop (on
  // CUDA from pinned memory on a side stream, see DeviceUpload).
  c10::Device device = c10::kCPU;
  // Data parallel: `ranks` processes read each global batch of batch_size x ranks samples
  // together, this one (`rank`) its own contiguous share; shares of a short last batch differ
  // by at most one sample, the first ranks' larger. Every sample is read once per epoch.
  int rank = 0;
  int ranks = 1;
  // Each detection target gets a generator of its own, seeded by (seed, epoch, position).
  bool image_generators = false;
};

// Where rank `rank`'s share of global batch `b` lies in the epoch's order: [begin, end), and
// whether that share is empty and [begin, end) a stand-in of one sample.
struct BatchShare {
  int64_t begin = 0, end = 0;
  bool padding = false;
};
BatchShare ShareOfBatch(int64_t samples, const LoaderOptions& options, int64_t b, int rank);

// The sample order of `epoch`: 0..n-1, or a permutation drawn from (seed, epoch).
std::vector<int64_t> EpochOrder(int64_t n, const LoaderOptions& options, int epoch);

class DetectionLoader {
 public:
  DetectionLoader(const DetectionDataset& dataset, LoaderOptions options) : dataset_(dataset), options_(options) {}
  int64_t NumBatches() const;
  // The batches of `epoch` from batch `first` on (a resumed run skips those it trained on).
  std::unique_ptr<PrefetchLoader<DetectionBatch>> Epoch(int epoch, int64_t first = 0) const;

 private:
  const DetectionDataset& dataset_;
  LoaderOptions options_;
};

class ClassificationLoader {
 public:
  ClassificationLoader(const ClassificationDataset& dataset, LoaderOptions options)
      : dataset_(dataset), options_(options) {}
  int64_t NumBatches() const;
  std::unique_ptr<PrefetchLoader<ClassificationBatch>> Epoch(int epoch, int64_t first = 0) const;

 private:
  const ClassificationDataset& dataset_;
  LoaderOptions options_;
};

// Flips an image [3, H, W] and its boxes left-right.
void FlipHorizontal(DetectionSample* sample);

}  // namespace spnas

#endif  // SPNAS_DATA_LOADER_H_
