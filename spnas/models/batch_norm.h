// BatchNorm2d whose batch statistics can span the processes training one model together (data
// parallel, as torch.nn.SyncBatchNorm): in training, while a BatchNormGroup is set, the mean
// and variance are those of the global batch, and the backward pass sums its terms over the
// ranks too. Otherwise it is torch::nn::BatchNorm2d, with the same parameters and buffers.
//
// A layer that a network runs more than once per image (the extra passes of SP-NAS's parallel
// structure) can keep one set of running statistics per pass: the affine parameters stay
// shared, but each pass is evaluated with the statistics of the inputs it saw in training.
#ifndef SPNAS_MODELS_BATCH_NORM_H_
#define SPNAS_MODELS_BATCH_NORM_H_

#include <functional>
#include <memory>
#include <vector>

#include <torch/nn/modules/batchnorm.h>

namespace spnas {

struct BatchNormGroup {
  int rank = 0;
  int size = 1;
  // The element-wise sum of a 1-D double tensor over the ranks, in rank order (the same bits
  // on every rank). Every rank calls it for the same layers in the same order.
  std::function<at::Tensor(const at::Tensor&)> sum;
  // This rank's batch is a stand-in (its share of a short last batch is empty): its samples
  // count in no statistic.
  bool padding = false;
};

// Sets the group of this process's BatchNorm layers for the scope's lifetime.
class BatchNormGroupScope {
 public:
  explicit BatchNormGroupScope(std::shared_ptr<BatchNormGroup> group);
  ~BatchNormGroupScope();
  BatchNormGroupScope(const BatchNormGroupScope&) = delete;
  BatchNormGroupScope& operator=(const BatchNormGroupScope&) = delete;
};

class BatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  using torch::nn::BatchNorm2dImpl::BatchNorm2dImpl;
  at::Tensor forward(const at::Tensor& input) { return ForwardPass(input, 0); }
  // Pass 0 uses the layer's own statistics; pass p in 1..pass_statistics() its p-th extra set.
  at::Tensor ForwardPass(const at::Tensor& input, int pass);

  // Adds extra sets of running statistics up to `passes`, as buffers running_mean_pass<p>,
  // running_var_pass<p> and num_batches_tracked_pass<p>, each a copy of the layer's own.
  void AddPassStatistics(int passes);
  int pass_statistics() const { return static_cast<int>(pass_statistics_.size()); }

 private:
  struct Statistics {
    at::Tensor mean, var, batches;
  };
  std::vector<Statistics> pass_statistics_;
};
TORCH_MODULE(BatchNorm2d);

}  // namespace spnas

#endif  // SPNAS_MODELS_BATCH_NORM_H_
