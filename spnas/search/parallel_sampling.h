// SpNasP's sampler (docs/sp_nas.md, parallel search): extra passes are added one at a time to a stage drawn with
// probability proportional to 1 / the FLOPs of one pass of that stage, until the next addition
// would break the limits (with fill_limits: until no stage's would fit), or a random stop.
#ifndef SPNAS_SEARCH_PARALLEL_SAMPLING_H_
#define SPNAS_SEARCH_PARALLEL_SAMPLING_H_

#include <functional>
#include <random>
#include <vector>

namespace spnas {

// A stage index drawn with P(l) ∝ 1 / flops[l] among the allowed stages; -1 if none is.
int DrawStage(const std::vector<double>& flops, const std::vector<bool>& allowed, std::mt19937_64& rng);

struct ParallelSampler {
  std::vector<double> pass_flops;  // per stage
  int max_per_stage = 3;
  double stop_probability = 0.25;
  bool fill_limits = false;
  // Whether a code is within the resource limits.
  std::function<bool(const std::vector<int>&)> within_limits;

  // Adds passes to `start` (all zeros by default) and returns the code.
  std::vector<int> Sample(std::vector<int> start, std::mt19937_64& rng) const;
};

}  // namespace spnas

#endif  // SPNAS_SEARCH_PARALLEL_SAMPLING_H_
