#include "spnas/models/model.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(ModelRegistry, "model", Model);
SPNAS_DEFINE_REGISTRY(BackboneRegistry, "backbone", Backbone);
SPNAS_DEFINE_REGISTRY(NeckRegistry, "neck", Neck, const Backbone&);
SPNAS_DEFINE_REGISTRY(HeadRegistry, "head", Head, int64_t, int64_t, int64_t);

}  // namespace spnas
