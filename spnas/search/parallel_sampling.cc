#include "spnas/search/parallel_sampling.h"

namespace spnas {

int DrawStage(const std::vector<double>& flops, const std::vector<bool>& allowed, std::mt19937_64& rng) {
  std::vector<double> weights(flops.size(), 0.0);
  bool any = false;
  for (size_t l = 0; l < flops.size(); ++l) {
    if (allowed[l] && flops[l] > 0) {
      weights[l] = 1.0 / flops[l];
      any = true;
    }
  }
  if (!any) return -1;
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  return pick(rng);
}

std::vector<int> ParallelSampler::Sample(std::vector<int> code, std::mt19937_64& rng) const {
  if (code.empty()) code.assign(pass_flops.size(), 0);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<bool> ruled_out(code.size(), false);  // stages whose next pass breaks a limit
  while (true) {
    std::vector<bool> allowed(code.size());
    for (size_t l = 0; l < code.size(); ++l) allowed[l] = code[l] < max_per_stage && !ruled_out[l];
    const int stage = DrawStage(pass_flops, allowed, rng);
    if (stage < 0) break;
    std::vector<int> next = code;
    ++next[stage];
    if (within_limits && !within_limits(next)) {  // the next addition would break a limit
      if (!fill_limits) break;
      ruled_out[stage] = true;
      continue;
    }
    code = next;
    if (unit(rng) < stop_probability) break;
  }
  return code;
}

}  // namespace spnas
