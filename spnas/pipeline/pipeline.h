// Validating and running a whole pipeline.
#ifndef SPNAS_PIPELINE_PIPELINE_H_
#define SPNAS_PIPELINE_PIPELINE_H_

#include <string>

#include "spnas/core/config.h"
#include "spnas/core/status.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {

struct RunOptions {
  // Keep finished steps and finished trials of an earlier, interrupted run.
  bool resume = false;
  // Delete the earlier output of this pipeline's steps and start over.
  bool overwrite = false;
  // The workers of a distributed run (spnas/distributed); nullptr: one process.
  TrainerPool* workers = nullptr;
};

// Every check of the config (CheckConfig) plus each pipe step's contract and each trainer's
// mixed_precision against the device; all errors together.
// inputs_must_exist: see CheckConfig (false for `validate`, true before a run).
void ValidatePipeline(const LoadedConfig& config, ConfigErrors* errors, bool inputs_must_exist = true);

// Loads, checks and returns the config, or an error listing every problem. Warnings, if any,
// go to `warnings`.
StatusOr<LoadedConfig> LoadAndValidate(const std::string& path, const ConfigLoadOptions& options,
                                       bool inputs_must_exist = true, std::vector<std::string>* warnings = nullptr);

// Runs the steps in order, each into {local_base_path}/output/<step>/.
Status RunPipeline(const LoadedConfig& config, const RunOptions& options);

}  // namespace spnas

#endif  // SPNAS_PIPELINE_PIPELINE_H_
