// The model kinds: whole models (detectors, classifiers) and the parts they compose
// (backbones, necks, heads), each built from a PluginConfig by its registry.
#ifndef SPNAS_MODELS_MODEL_H_
#define SPNAS_MODELS_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "spnas/core/detection_types.h"
#include "spnas/core/registry.h"

namespace spnas {

// A network a trainer builds from a model description (the step's `model`).
class Model : public torch::nn::Module {
 public:
  ~Model() override = default;
};

struct DetectorOutput {
  // Training: loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg.
  std::map<std::string, at::Tensor> losses;
  // Evaluation: one entry per image.
  std::vector<Detections> detections;
};

// Images: float [3, H, W] in [0, 1], any sizes. Targets are required in training mode.
class Detector : public Model {
 public:
  virtual DetectorOutput Forward(const std::vector<at::Tensor>& images,
                                 const std::vector<Target>* targets = nullptr) = 0;
  // The feature levels of the backbone and neck for a batch [N, 3, H, W] (no resizing).
  virtual std::vector<at::Tensor> Features(const at::Tensor& batch) = 0;
};

// Images [N, C, H, W] -> logits [N, num_classes].
class Classifier : public Model {
 public:
  virtual at::Tensor Forward(const at::Tensor& images) = 0;
};

// What a backbone computes: the stem output (C_0) and each stage's output (C_1..C_L).
struct BackboneFeatures {
  at::Tensor stem;
  std::vector<at::Tensor> stages;
};

class Backbone : public torch::nn::Module {
 public:
  virtual BackboneFeatures Forward(const at::Tensor& images) = 0;
  virtual int64_t StemChannels() const = 0;
  virtual std::vector<int64_t> StageChannels() const = 0;
};

// Backbone features -> the feature levels the heads read (e.g. FPN P2..P6), finest first.
class Neck : public torch::nn::Module {
 public:
  virtual std::vector<at::Tensor> Forward(const BackboneFeatures& features) = 0;
  virtual int64_t OutChannels() const = 0;
  // Levels pooled by RoI heads (the rest, e.g. an extra max-pooled level, feed the RPN only).
  virtual int64_t NumRoiLevels() const = 0;
};

// A head that maps pooled features [N, ...] to a representation [N, OutFeatures()].
class Head : public torch::nn::Module {
 public:
  virtual at::Tensor Forward(const at::Tensor& x) = 0;
  virtual int64_t OutFeatures() const = 0;
};

SPNAS_DECLARE_REGISTRY(ModelRegistry, Model);
SPNAS_DECLARE_REGISTRY(BackboneRegistry, Backbone);
// A neck is built for a given backbone (its channels, and its stages for parallel necks).
SPNAS_DECLARE_REGISTRY(NeckRegistry, Neck, const Backbone&);
// A head is built for a given input size: channels x height x width of the pooled features.
SPNAS_DECLARE_REGISTRY(HeadRegistry, Head, int64_t, int64_t, int64_t);

}  // namespace spnas

#endif  // SPNAS_MODELS_MODEL_H_
