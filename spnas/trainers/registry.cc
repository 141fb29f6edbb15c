#include "spnas/trainers/callback.h"
#include "spnas/trainers/trainer.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(TrainerRegistry, "trainer", Trainer);
SPNAS_DEFINE_REGISTRY(CallbackRegistry, "callback", Callback);

}  // namespace spnas
