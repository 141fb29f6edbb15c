#include "spnas/trainers/gradient_reducer.h"

#include <ATen/ATen.h>

namespace spnas {

std::vector<std::vector<size_t>> AssignBuckets(const std::vector<int64_t>& numel, int64_t element_size,
                                               int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t k = numel.size(); k-- > 0;) {
    if (buckets.empty() || bytes >= bucket_bytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(k);
    bytes += numel[k] * element_size;
  }
  return buckets;
}

GradientReducer::GradientReducer(std::vector<at::Tensor> params, std::shared_ptr<Collective> collective,
                                 int64_t bucket_bytes)
    : params_(std::move(params)), collective_(std::move(collective)), where_(params_.size()), arrived_(params_.size()) {
  std::vector<int64_t> numel;
  for (const at::Tensor& p : params_) numel.push_back(p.numel());
  const int64_t element_size = params_.empty() ? 4 : static_cast<int64_t>(params_[0].element_size());
  for (const std::vector<size_t>& members : AssignBuckets(numel, element_size, bucket_bytes)) {
    Bucket& b = buckets_.emplace_back();
    b.offsets.push_back(0);
    for (size_t k : members) {
      where_[k] = {buckets_.size() - 1, b.params.size()};
      b.params.push_back(k);
      b.offsets.push_back(b.offsets.back() + params_[k].numel());
    }
  }
  for (Bucket& b : buckets_) b.flat = at::zeros({b.offsets.back()}, params_[b.params[0]].options());
  for (size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(
        params_[k].register_hook([this, k](const at::TensorBase& grad) { OnGradient(k, at::Tensor(grad)); }));
  }
  thread_ = std::thread([this] { Run(); });
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(hooks_[k]);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Interrupted between Begin and Finish (the training failed): the other ranks must not
    // wait for this one's buckets, nor this one's thread for theirs.
    if (active_ && !done_) collective_->Abort("its training stopped in the middle of a step");
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GradientReducer::Begin() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Bucket& b : buckets_) {
    b.flat.zero_();
    b.ready = 0;
    b.sum = at::Tensor();
  }
  std::fill(arrived_.begin(), arrived_.end(), false);
  error_ = nullptr;
  finishing_ = done_ = false;
  active_ = true;
  cv_.notify_all();
}

void GradientReducer::OnGradient(size_t param, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto [index, slot] = where_[param];
  Bucket& b = buckets_[index];
  at::Tensor part = b.flat.narrow(0, b.offsets[slot], b.offsets[slot + 1] - b.offsets[slot]);
  // A leaf's hook sees its whole gradient once; adding keeps it right if it ever came in parts.
  part.add_(grad.reshape(-1));
  if (!arrived_[param]) {
    arrived_[param] = true;
    if (++b.ready == b.params.size()) cv_.notify_all();
  }
}

void GradientReducer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || (active_ && !done_); });
    if (stop_) return;
    // Every rank sums the buckets in the same order (the collective's calls must match).
    for (Bucket& b : buckets_) {
      cv_.wait(lock, [&] { return stop_ || finishing_ || b.ready == b.params.size(); });
      if (stop_) return;
      const at::Tensor mine = b.flat.to(at::kCPU, /*non_blocking=*/false, /*copy=*/true);
      lock.unlock();
      at::Tensor sum;
      std::exception_ptr error;
      try {
        sum = collective_->AllReduceSum(mine);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      b.sum = sum;
      if (error) {
        error_ = error;
        break;
      }
    }
    done_ = true;
    active_ = false;
    cv_.notify_all();
  }
}

void GradientReducer::Finish() {
  std::unique_lock<std::mutex> lock(mu_);
  finishing_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_; });
  if (error_) std::rethrow_exception(error_);
  for (Bucket& b : buckets_) {
    const at::Tensor sum = b.sum.to(b.flat.device());
    for (size_t i = 0; i < b.params.size(); ++i) {
      at::Tensor& p = params_[b.params[i]];
      const at::Tensor grad = sum.narrow(0, b.offsets[i], b.offsets[i + 1] - b.offsets[i]).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(grad);
      } else {
        p.mutable_grad() = grad.clone();
      }
    }
  }
}

}  // namespace spnas
