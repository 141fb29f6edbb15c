// The commands that use a trained model or data: eval, predict, cocoeval, convert, export_coco.
#ifndef SPNAS_CLI_MODEL_COMMANDS_H_
#define SPNAS_CLI_MODEL_COMMANDS_H_

#include <string>

#include <c10/core/Device.h>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"

namespace spnas {

// A dataset from a short spec: "fashiondet:<split>[:<images>[:<canvas>]]",
// "coco:<annotations.json>:<image dir>", "voc:<root>:<image set>".
StatusOr<PluginConfig> DatasetFromSpec(const std::string& spec);

struct EvalArgs {
  std::string model_dir, dataset, detections_out;
  int id = -1;  // -1: the record with the best mAP
  int max_images = 0;
};
Status Eval(const EvalArgs& args, const c10::Device& device);

struct PredictArgs {
  std::string model_dir, image, out, json_out;
  int id = -1;
  double score_threshold = 0.5;
};
Status Predict(const PredictArgs& args, const c10::Device& device);

Status CocoEval(const std::string& annotations, const std::string& detections);

// Converts a torchvision checkpoint into a records folder (model_0, desc_0, performance_0) for
// the model described by `model_config` (a textproto PluginConfig). The model is built on
// `device`, so a conversion for a GPU run also shows that it fits there.
Status Convert(const std::string& weights, const std::string& model_config, const std::string& out_dir,
               const c10::Device& device);

// A saved model as an ONNX or TorchScript file, by python/spnas_torch (its export module) run
// with `python` ("" = $SPNAS_PYTHON, else the build's Python environment).
struct ExportArgs {
  std::string model_dir, format, out, python;
  int id = -1;
};
Status Export(const ExportArgs& args);

Status ExportDataset(const std::string& dataset, const std::string& out_dir, int max_images);

}  // namespace spnas

#endif  // SPNAS_CLI_MODEL_COMMANDS_H_
