#include "spnas/models/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>

#include "spnas/core/files.h"
#include "spnas/models/torch_unpickler.h"

namespace spnas {

namespace {

// torch.save's zip layout (data.pkl + data/<i>), pickled without LibTorch's type tags: a tagged
// dict names torch.jit._pickle.restore_type_tag, which torch.load refuses by default
// (weights_only). Untagged, `torch.load(path)` reads it as a plain dict of tensors.
std::string PickleForPython(const c10::IValue& value) {
  std::string pkl;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pkl.append(data, size); }, nullptr, nullptr, nullptr,
                              nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  writer.writeRecord("data.pkl", pkl.data(), pkl.size());
  const std::vector<at::Tensor>& tensors = pickler.tensorData();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(tensors[i]);
    writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
  }
  writer.writeEndOfFile();
  return out;
}

c10::Dict<std::string, at::Tensor> ToDict(const StateDict& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : state) dict.insert(name, tensor.detach().cpu().contiguous());
  return dict;
}

}  // namespace

Status SaveWeights(const std::string& path, const StateDict& state) {
  return WriteFileAtomic(path, PickleForPython(c10::IValue(ToDict(state))));
}

Status SaveSections(const std::string& path, const std::map<std::string, StateDict>& sections) {
  c10::Dict<std::string, c10::Dict<std::string, at::Tensor>> dict;
  for (const auto& [name, state] : sections) dict.insert(name, ToDict(state));
  return WriteFileAtomic(path, PickleForPython(c10::IValue(dict)));
}

StatusOr<std::map<std::string, StateDict>> LoadSections(const std::string& path) {
  return ReadTorchCheckpointSections(path);
}

// spnas's own reader, for every format: LibTorch's pickle_load trusts the lengths a file claims
// (a corrupt file can make it allocate gigabytes).
StatusOr<StateDict> LoadWeights(const std::string& path) { return ReadTorchCheckpoint(path); }

}  // namespace spnas
