// Matcher and BalancedPositiveNegativeSampler (torchvision detection _utils).
#ifndef SPNAS_MODELS_DETECTION_MATCHER_H_
#define SPNAS_MODELS_DETECTION_MATCHER_H_

#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "spnas/core/detection_types.h"

namespace spnas {

class Matcher {
 public:
  static constexpr int64_t kBelowLowThreshold = -1;
  static constexpr int64_t kBetweenThresholds = -2;

  Matcher(double high_threshold, double low_threshold, bool allow_low_quality_matches)
      : high_(high_threshold), low_(low_threshold), allow_low_quality_(allow_low_quality_matches) {}

  // match_quality [G, P] (IoU of G ground-truth boxes with P predictions) -> [P] index of the
  // matched ground truth, or kBelowLowThreshold / kBetweenThresholds.
  at::Tensor operator()(const at::Tensor& match_quality) const;

 private:
  double high_, low_;
  bool allow_low_quality_;
};

class BalancedSampler {
 public:
  BalancedSampler(int64_t batch_size_per_image, double positive_fraction)
      : batch_size_(batch_size_per_image), positive_fraction_(positive_fraction) {}

  // labels per image ([P]: >= 1 positive, 0 negative, -1 ignored) -> (positive mask,
  // negative mask) per image, drawn with the image's generator (Target::generator) when it
  // has one, else with torch's.
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> operator()(const std::vector<at::Tensor>& labels,
                                                                         const std::vector<Target>& targets) const;

 private:
  int64_t batch_size_;
  double positive_fraction_;
};

}  // namespace spnas

#endif  // SPNAS_MODELS_DETECTION_MATCHER_H_
