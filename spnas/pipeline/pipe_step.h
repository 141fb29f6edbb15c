// The pipe step kind: one step of a pipeline (search, train, ...).
#ifndef SPNAS_PIPELINE_PIPE_STEP_H_
#define SPNAS_PIPELINE_PIPE_STEP_H_

#include "spnas/core/config.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/core/step_context.h"

namespace spnas {

class PipeStep {
 public:
  virtual ~PipeStep() = default;
  // Checks the step's contract (the slots it needs, its inputs) before anything runs.
  virtual void Validate(const LoadedConfig& config, int step_index, ConfigErrors* errors) const = 0;
  // Runs the step; with context.resume, keeps the trials already finished.
  virtual Status Run(const StepContext& context) = 0;
};

SPNAS_DECLARE_REGISTRY(PipeStepRegistry, PipeStep);

}  // namespace spnas

#endif  // SPNAS_PIPELINE_PIPE_STEP_H_
