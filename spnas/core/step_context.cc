#include "spnas/core/step_context.h"

#include "spnas/core/random.h"

namespace spnas {

uint64_t StepSeed(uint64_t seed, int step_index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step_index) * 0xD1B54A32D192ED03ULL;
  z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDULL;
  return z ^ (z >> 33);
}

uint64_t StepContext::TrialSeed(int trial_id) const {
  // Independent streams per trial of the step.
  return SplitMix64(seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(trial_id + 1));
}

}  // namespace spnas
