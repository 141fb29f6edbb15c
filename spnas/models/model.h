// The model kinds: whole models (detectors, classifiers) and the parts they compose
// (backbones, necks, heads), each built from a PluginConfig by its registry.
#ifndef SPNAS_MODELS_MODEL_H_
#define SPNAS_MODELS_MODEL_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "spnas/core/registry.h"

namespace spnas {

// A network a trainer builds from a model description (the step's `model`).
class Model : public torch::nn::Module {
 public:
  ~Model() override = default;
};

// Image tensor [N, 3, H, W] -> feature levels, finest first.
class Backbone : public torch::nn::Module {
 public:
  ~Backbone() override = default;
  virtual std::vector<at::Tensor> Features(const at::Tensor& images) = 0;
  virtual std::vector<int64_t> FeatureChannels() const = 0;
};

// Backbone feature levels -> the levels the heads read (e.g. FPN P2..P6).
class Neck : public torch::nn::Module {
 public:
  ~Neck() override = default;
  virtual std::vector<at::Tensor> Levels(const std::vector<at::Tensor>& features) = 0;
  virtual int64_t OutChannels() const = 0;
};

// A head reads the neck's levels; its outputs depend on the model that owns it.
class Head : public torch::nn::Module {
 public:
  ~Head() override = default;
};

SPNAS_DECLARE_REGISTRY(ModelRegistry, Model);
// Backbones know nothing else; necks are told the backbone's channels per level.
SPNAS_DECLARE_REGISTRY(BackboneRegistry, Backbone);
SPNAS_DECLARE_REGISTRY(NeckRegistry, Neck, const std::vector<int64_t>&);
SPNAS_DECLARE_REGISTRY(HeadRegistry, Head, int64_t);

}  // namespace spnas

#endif  // SPNAS_MODELS_MODEL_H_
