#include "spnas/pipeline/pipe_step.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(PipeStepRegistry, "pipe_step", PipeStep);

}  // namespace spnas
