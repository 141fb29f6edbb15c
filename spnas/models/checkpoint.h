// Weights files: what spnas writes (a dict of tensors that Python's torch.load reads) and what
// it reads (its own files, and files written by Python's torch.save: see torch_unpickler.h).
#ifndef SPNAS_MODELS_CHECKPOINT_H_
#define SPNAS_MODELS_CHECKPOINT_H_

#include <map>
#include <string>

#include "spnas/core/status.h"
#include "spnas/models/state_dict.h"

namespace spnas {

// Writes `state` atomically as a PyTorch zip file holding a dict name -> tensor.
Status SaveWeights(const std::string& path, const StateDict& state);

// Writes a dict of sections, each a dict name -> tensor, atomically in the same format: a
// training checkpoint with its model under "model" (which LoadWeights reads as the weights).
Status SaveSections(const std::string& path, const std::map<std::string, StateDict>& sections);

// Reads what SaveSections wrote.
StatusOr<std::map<std::string, StateDict>> LoadSections(const std::string& path);

// Reads a state dict from a file of spnas or of torch.save (zip or legacy format, plain dict,
// OrderedDict with _metadata, or nested under "state_dict" / "model").
StatusOr<StateDict> LoadWeights(const std::string& path);

}  // namespace spnas

#endif  // SPNAS_MODELS_CHECKPOINT_H_
