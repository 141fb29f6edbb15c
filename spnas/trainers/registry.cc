#include "spnas/trainers/trainer.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(TrainerRegistry, "trainer", Trainer);

}  // namespace spnas
