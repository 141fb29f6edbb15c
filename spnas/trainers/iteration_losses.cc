#include <ATen/ATen.h>

#include "spnas/trainers/callback.h"

namespace spnas {

void IterationLosses::Set(std::vector<std::string> names, at::Tensor values) {
  names_ = std::move(names);
  values_ = std::move(values);
  host_.reset();
}

void IterationLosses::Set(std::map<std::string, double> values) {
  names_.clear();
  values_ = at::Tensor();
  host_ = std::move(values);
}

const std::map<std::string, double>& IterationLosses::Read() const {
  if (host_) return *host_;
  host_.emplace();
  if (!values_.defined()) return *host_;
  const at::Tensor host = values_.to(at::kCPU, at::kDouble).contiguous();
  const double* v = host.data_ptr<double>();
  for (size_t i = 0; i < names_.size(); ++i) (*host_)[names_[i]] = v[i];
  return *host_;
}

double IterationLosses::Total() const {
  double total = 0;
  for (const auto& [name, value] : Read()) total += value;
  return total;
}

}  // namespace spnas
