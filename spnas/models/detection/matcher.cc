#include "spnas/models/detection/matcher.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "spnas/device/device.h"

namespace spnas {

at::Tensor Matcher::operator()(const at::Tensor& match_quality) const {
  TORCH_CHECK(match_quality.size(0) > 0, "matcher: no ground-truth boxes for one of the images");
  TORCH_CHECK(match_quality.size(1) > 0, "matcher: no proposal boxes for one of the images");
  auto [matched_vals, matches] = match_quality.max(0);
  const at::Tensor all_matches = allow_low_quality_ ? matches.clone() : at::Tensor();
  const at::Tensor below = matched_vals < low_;
  const at::Tensor between = (matched_vals >= low_).logical_and(matched_vals < high_);
  matches.masked_fill_(below, kBelowLowThreshold);
  matches.masked_fill_(between, kBetweenThresholds);
  if (allow_low_quality_) {
    // Each ground truth keeps the predictions it overlaps most, even below the threshold.
    const at::Tensor highest = std::get<0>(match_quality.max(1));
    const at::Tensor pairs = at::where(match_quality == highest.unsqueeze(1))[1];
    matches.index_put_({pairs}, all_matches.index({pairs}));
  }
  return matches;
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> BalancedSampler::operator()(
    const std::vector<at::Tensor>& labels, const std::vector<Target>& targets) const {
  std::vector<at::Tensor> pos_masks, neg_masks;
  for (size_t i = 0; i < labels.size(); ++i) {
    const at::Tensor& l = labels[i];
    const at::Generator& generator = targets[i].generator;
    // Drawn on the labels' device: from the image's own CPU generator on the CPU, elsewhere from
    // a generator there that it seeds (no permutation crosses from the host), or from the
    // device's default generator when the image has none.
    at::Generator draw = generator;
    if (generator.defined() && !l.is_cpu()) {
      const uint64_t seed = at::empty({1}, at::kLong).random_(generator).item<int64_t>();
      draw = MakeGenerator(l.device(), seed);
    }
    auto permutation = [&](int64_t n) {
      if (!draw.defined()) return at::randperm(n, l.options().dtype(at::kLong));
      return at::randperm(n, draw, l.options().dtype(at::kLong));
    };
    // where() and numel() read the counts from the device, as torchvision's sampler does.
    const at::Tensor positive = at::where(l >= 1)[0];
    const at::Tensor negative = at::where(l == 0)[0];
    const int64_t num_pos = std::min(positive.numel(), static_cast<int64_t>(batch_size_ * positive_fraction_));
    const int64_t num_neg = std::min(negative.numel(), batch_size_ - num_pos);
    const at::Tensor perm1 = permutation(positive.numel()).slice(0, 0, num_pos);
    const at::Tensor perm2 = permutation(negative.numel()).slice(0, 0, num_neg);
    at::Tensor pos_mask = at::zeros_like(l, l.options().dtype(at::kByte));
    at::Tensor neg_mask = at::zeros_like(l, l.options().dtype(at::kByte));
    pos_mask.index_fill_(0, positive.index_select(0, perm1), 1);
    neg_mask.index_fill_(0, negative.index_select(0, perm2), 1);
    pos_masks.push_back(pos_mask);
    neg_masks.push_back(neg_mask);
  }
  return {pos_masks, neg_masks};
}

}  // namespace spnas
