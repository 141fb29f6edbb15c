// What a pipe step, and the trainers and callbacks it runs, know about its place in the pipeline.
#ifndef SPNAS_CORE_STEP_CONTEXT_H_
#define SPNAS_CORE_STEP_CONTEXT_H_

#include <cstdint>
#include <string>

#include "spnas/core/config.h"

namespace spnas {

class TrainerPool;  // spnas/trainers/trainer_pool.h

struct StepContext {
  const LoadedConfig* config = nullptr;
  const StepConfig* step = nullptr;
  std::string output_dir;  // {local_base_path}/output/<step>
  std::string input_dir;   // models_folder resolved, or ""
  bool resume = false;     // keep finished trials
  uint64_t seed = 0;       // the step's seed, derived from general.seed
  // The workers of a distributed run, which pipe steps hand their trials to; nullptr: trials
  // train in this process.
  TrainerPool* workers = nullptr;

  const GeneralConfig& general() const { return config->config().general(); }
  // A seed for trial `trial_id`, the same in every run of this config.
  uint64_t TrialSeed(int trial_id) const;
};

// The seed of the pipeline's step `step_index` (StepContext::seed) from general.seed.
uint64_t StepSeed(uint64_t seed, int step_index);

}  // namespace spnas

#endif  // SPNAS_CORE_STEP_CONTEXT_H_
