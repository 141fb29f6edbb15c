// Data parallel: makes every rank's gradients the global batch's, while the backward pass
// still runs. Each rank back-propagates its part of the global batch's loss; the gradients go
// in buckets (about `bucket_bytes` each, the last layers' first, as the backward pass produces
// them), and a bucket is summed over the ranks by a thread of its own as soon as all its
// gradients are there.
#ifndef SPNAS_TRAINERS_GRADIENT_REDUCER_H_
#define SPNAS_TRAINERS_GRADIENT_REDUCER_H_

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include "spnas/trainers/collective.h"

namespace spnas {

// The buckets of parameters of `numel` elements of `element_size` bytes each: from the last
// parameter to the first (the order in which the backward pass produces their gradients), a
// bucket closing once it holds at least `bucket_bytes`. Each bucket lists parameter indices.
std::vector<std::vector<size_t>> AssignBuckets(const std::vector<int64_t>& numel, int64_t element_size,
                                               int64_t bucket_bytes);

class GradientReducer {
 public:
  GradientReducer(std::vector<at::Tensor> params, std::shared_ptr<Collective> collective,
                  int64_t bucket_bytes = int64_t{4} << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before the backward pass.
  void Begin();
  // After the backward pass: waits for every bucket and sets each parameter's gradient to the
  // sum over the ranks. Rethrows the collective's error.
  void Finish();

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    at::Tensor flat;  // the gradients, on the parameters' device
    size_t ready = 0;
    at::Tensor sum;  // on the CPU, once reduced
  };
  void OnGradient(size_t param, const at::Tensor& grad);
  void Run();

  std::vector<at::Tensor> params_;
  std::shared_ptr<Collective> collective_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // parameter -> (bucket, index in it)
  std::vector<bool> arrived_;
  std::vector<unsigned> hooks_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool active_ = false, finishing_ = false, done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace spnas

#endif  // SPNAS_TRAINERS_GRADIENT_REDUCER_H_
