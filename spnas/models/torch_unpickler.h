// Reads state dicts from files written by Python's torch.save, which LibTorch's pickle_load
// cannot read, and by LibTorch's torch::pickle_save: the zip format and the legacy (pre-1.6) format, a plain dict or an
// OrderedDict with _metadata, possibly nested under "state_dict" or "model". Only what state dicts use is supported;
// any other pickle opcode or global is an error that names it. Nothing is executed.
#ifndef SPNAS_MODELS_TORCH_UNPICKLER_H_
#define SPNAS_MODELS_TORCH_UNPICKLER_H_

#include <map>
#include <string>

#include "spnas/core/status.h"
#include "spnas/models/state_dict.h"

namespace spnas {

StatusOr<StateDict> ReadTorchCheckpoint(const std::string& path);

// A dict of sections, each a dict of tensors (a training checkpoint: see checkpoint.h).
StatusOr<std::map<std::string, StateDict>> ReadTorchCheckpointSections(const std::string& path);

}  // namespace spnas

#endif  // SPNAS_MODELS_TORCH_UNPICKLER_H_
