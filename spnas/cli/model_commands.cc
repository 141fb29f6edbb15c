#include "spnas/cli/model_commands.h"
#include "spnas/core/logging.h"

#include <ATen/ATen.h>
#include <google/protobuf/text_format.h>

#include <spawn.h>
#include <sys/wait.h>

#include <libtorch/python_path.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spnas/core/config.h"
#include "spnas/core/files.h"
#include "spnas/core/format.h"
#include "spnas/core/record_store.h"
#include "spnas/core/step_folder.h"
#include "spnas/data/coco.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/image_io.h"
#include "spnas/data/loader.h"
#include "spnas/metrics/coco_files.h"
#include "spnas/metrics/evaluate.h"
#include "spnas/metrics/metric.h"
#include "spnas/models/checkpoint.h"
#include "spnas/models/cost.h"
#include "spnas/models/model.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, sep);) parts.push_back(part);
  return parts;
}

struct LoadedModel {
  Trial trial;
  std::shared_ptr<Detector> detector;
  StepConfig step;  // the step that wrote the record, from the folder's config.textproto
  bool has_step = false;
};

// The record `id` of a step folder (or its best by mAP) with its detector and weights loaded.
StatusOr<LoadedModel> LoadModel(const std::string& dir_in, int id, const c10::Device& device) {
  const std::string dir = ResolveUserPath(dir_in);
  SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> trials, RecordStore(dir).LoadAll());
  if (trials.empty()) return NotFoundError("'", dir, "' holds no records (performance_<id>.json)");
  LoadedModel m;
  const Trial* chosen = nullptr;
  for (const Trial& t : trials) {
    if (id >= 0 && t.record.id() == id) chosen = &t;
    if (id < 0 && t.record.status() == FINISHED && t.record.has_weights()) {
      auto map = [](const Trial& x) {
        auto it = x.record.metrics().find("mAP");
        return it == x.record.metrics().end() ? -1e9 : it->second;
      };
      if (chosen == nullptr || map(t) > map(*chosen)) chosen = &t;
    }
  }
  if (chosen == nullptr) {
    return NotFoundError("'", dir, "' has no ",
                         id >= 0 ? StrCat("record ", id) : std::string("finished record with weights"));
  }
  if (!chosen->record.has_weights()) return FailedPreconditionError("record ", chosen->record.id(), " has no weights");
  m.trial = *chosen;
  auto model = ModelRegistry().Create(m.trial.desc.type(), m.trial.desc.options());
  if (!model.ok()) return Annotate(model.status(), RecordStore(dir).DescPath(m.trial.record.id()));
  m.detector = std::dynamic_pointer_cast<Detector>(std::shared_ptr<Model>(model->release()));
  if (m.detector == nullptr) return InvalidArgumentError("record ", m.trial.record.id(), " is not a detector");
  SPNAS_ASSIGN_OR_RETURN(StateDict state, LoadWeights(m.trial.weights));
  const LoadReport report = LoadStateDict(*m.detector, state);
  if (!report.missing.empty() || !report.mismatched.empty()) {
    return InvalidArgumentError("the weights of record ", m.trial.record.id(),
                                " do not fit its model: ", report.Summary());
  }
  m.detector->to(device);
  m.detector->eval();
  // The step's settings (its datasets), from the resolved config saved next to the records.
  const std::string config_path = StepFolder(dir).ResolvedConfigPath();
  if (fs::exists(config_path)) {
    ConfigErrors errors;
    auto config = LoadConfigFile(config_path, ConfigLoadOptions(), &errors);
    if (config.ok()) {
      for (const StepConfig& step : config->config().step()) {
        if (config->OutputDir(step.name()) == fs::path(dir).lexically_normal().string() ||
            step.name() == fs::path(dir).lexically_normal().filename().string()) {
          m.step = step;
          m.has_step = true;
        }
      }
    }
  }
  LOG(INFO) << "model: record " << m.trial.record.id() << " of " << dir << " (" << m.trial.desc.type() << ")";
  return m;
}

}  // namespace

StatusOr<PluginConfig> DatasetFromSpec(const std::string& spec) {
  const std::vector<std::string> p = Split(spec, ':');
  PluginConfig c;
  auto number = [&](size_t i) -> StatusOr<int> {
    int value = 0;
    const auto [end, error] = std::from_chars(p[i].data(), p[i].data() + p[i].size(), value);
    if (error != std::errc() || end != p[i].data() + p[i].size()) {
      return InvalidArgumentError("dataset '", spec, "': '", p[i], "' is not a whole number");
    }
    return value;
  };
  if (!p.empty() && p[0] == "fashiondet" && p.size() >= 2) {
    FashionDetOptions o;
    o.set_split(p[1]);
    if (p.size() >= 3) {
      SPNAS_ASSIGN_OR_RETURN(int images, number(2));
      o.set_num_images(images);
    }
    if (p.size() >= 4) {
      SPNAS_ASSIGN_OR_RETURN(int canvas, number(3));
      o.set_canvas_size(canvas);
    }
    c.set_type("FashionDet");
    c.mutable_options()->PackFrom(o);
  } else if (!p.empty() && p[0] == "coco" && p.size() == 3) {
    CocoDetectionOptions o;
    o.set_annotation_file(ResolveUserPath(p[1]));
    o.set_image_dir(ResolveUserPath(p[2]));
    c.set_type("CocoDetection");
    c.mutable_options()->PackFrom(o);
  } else if (!p.empty() && p[0] == "voc" && p.size() == 3) {
    VocDetectionOptions o;
    o.set_root(ResolveUserPath(p[1]));
    o.set_image_set(p[2]);
    c.set_type("VocDetection");
    c.mutable_options()->PackFrom(o);
  } else {
    return InvalidArgumentError("dataset '", spec, "' is not one of fashiondet:<split>[:<images>[:<canvas>]], ",
                                "coco:<annotations.json>:<image dir>, voc:<root>:<image set>");
  }
  SPNAS_RETURN_IF_ERROR(DatasetRegistry().ValidateOptions(c.type(), c.options()));
  return c;
}

Status Eval(const EvalArgs& args, const c10::Device& device) {
  SPNAS_ASSIGN_OR_RETURN(LoadedModel m, LoadModel(args.model_dir, args.id, device));
  PluginConfig data_config;
  if (!args.dataset.empty()) {
    SPNAS_ASSIGN_OR_RETURN(data_config, DatasetFromSpec(args.dataset));
  } else if (m.has_step && m.step.has_val_data()) {
    data_config = m.step.val_data();
  } else {
    return InvalidArgumentError("give --dataset: the step of '", args.model_dir, "' has no val_data");
  }
  SPNAS_ASSIGN_OR_RETURN(std::shared_ptr<Dataset> dataset, LoadDatasetCached(data_config));
  auto* data = dynamic_cast<DetectionDataset*>(dataset.get());
  if (data == nullptr) return InvalidArgumentError("eval needs a detection dataset");
  std::vector<std::unique_ptr<DetectionMetric>> metrics;
  for (const char* name : {"COCO", "VOC"}) {
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<DetectionMetric> metric,
                           MetricRegistry().Create(name, google::protobuf::Any()));
    metrics.push_back(std::move(metric));
  }
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.max_samples = args.max_images;
  lo.device = device;
  std::vector<CocoResult> results;
  const auto start = std::chrono::steady_clock::now();
  Detector* detector = m.detector.get();
  EvaluateDetector(
      DetectionLoader(*data, lo),
      [detector](const std::vector<at::Tensor>& images) { return detector->Forward(images).detections; }, metrics,
      [&](const DetectionSample& sample, const Detections& d) {
        for (int64_t k = 0; k < d.boxes.size(0); ++k) {
          const auto b = d.boxes[k];
          const double x1 = b[0].item<double>(), y1 = b[1].item<double>();
          results.push_back({sample.image_id,
                             data->CategoryId(d.labels[k].item<int64_t>()),
                             {x1, y1, b[2].item<double>() - x1, b[3].item<double>() - y1},
                             d.scores[k].item<double>()});
        }
      });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "record " << m.trial.record.id() << " of " << ResolveUserPath(args.model_dir) << " on " << data->Size()
            << " images (" << data_config.type() << "), " << seconds << " s\n";
  for (auto& metric : metrics) {
    for (const auto& [k, v] : metric->Compute()) std::printf("  %-9s %.2f\n", k.c_str(), v);
  }
  std::cout << metrics[0]->Summary() << std::flush;
  if (!args.detections_out.empty()) {
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(ResolveUserPath(args.detections_out), CocoResultsJson(results)));
    std::cout << results.size() << " detections written to " << ResolveUserPath(args.detections_out)
              << " (COCO results format)\n";
  }
  return Status::Ok();
}

namespace {

// Detections of one image drawn on it and as JSON; written to `out` and `json_out` when set.
StatusOr<nlohmann::json> PredictImage(const LoadedModel& m, const std::vector<std::string>& names,
                                      const std::string& image_path, const std::string& out,
                                      const std::string& json_out, double score_threshold, const c10::Device& device) {
  SPNAS_ASSIGN_OR_RETURN(at::Tensor image, ReadImage(image_path));
  at::NoGradGuard no_grad;
  const Detections d = m.detector->Forward({image.to(device)}).detections[0].To(c10::kCPU);
  at::Tensor canvas = image.clone();
  const int64_t width = canvas.size(2);
  nlohmann::json json = nlohmann::json::array();
  for (int64_t k = 0; k < d.boxes.size(0); ++k) {
    const double score = d.scores[k].item<double>();
    if (score < score_threshold) continue;
    const int64_t label = d.labels[k].item<int64_t>();
    const std::string name = label < static_cast<int64_t>(names.size()) ? names[label] : StrCat("class ", label);
    const auto b = d.boxes[k];
    const float x1 = b[0].item<float>(), y1 = b[1].item<float>(), x2 = b[2].item<float>(), y2 = b[3].item<float>();
    const Rgb color = {static_cast<uint8_t>((label * 37 + 160) % 256), static_cast<uint8_t>((label * 151 + 80) % 256),
                       static_cast<uint8_t>((label * 67) % 256)};
    DrawBox(canvas, x1, y1, x2, y2, color, 1 + static_cast<int>(width / 400));
    char text[128];
    std::snprintf(text, sizeof(text), "%s %.2f", name.c_str(), score);
    const int scale = std::max<int>(1, static_cast<int>(width / 400));
    DrawText(canvas, text, x1, std::max<float>(7.0f * scale + 1, y1 - 2), color, scale);
    json.push_back({{"box", {x1, y1, x2, y2}}, {"label", label}, {"class", name}, {"score", score}});
  }
  if (!out.empty()) SPNAS_RETURN_IF_ERROR(WriteImage(out, canvas));
  if (!json_out.empty()) SPNAS_RETURN_IF_ERROR(WriteFileAtomic(json_out, json.dump(2)));
  return json;
}

bool IsImageFile(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

}  // namespace

Status Predict(const PredictArgs& args, const c10::Device& device) {
  SPNAS_ASSIGN_OR_RETURN(LoadedModel m, LoadModel(args.model_dir, args.id, device));
  std::vector<std::string> names;
  if (m.has_step && m.step.has_train_data()) {
    auto dataset = LoadDatasetCached(m.step.train_data());
    if (dataset.ok()) names = (*dataset)->ClassNames();
  }
  const std::string input = ResolveUserPath(args.image);
  if (!fs::is_directory(input)) {
    SPNAS_ASSIGN_OR_RETURN(
        nlohmann::json json,
        PredictImage(m, names, input, args.out.empty() ? "" : ResolveUserPath(args.out),
                     args.json_out.empty() ? "" : ResolveUserPath(args.json_out), args.score_threshold, device));
    std::cout << json.size() << " detections with score >= " << args.score_threshold << "\n" << json.dump(2) << "\n";
    return Status::Ok();
  }

  // A folder: <out>/<name> (the image with its boxes) and <out>/<stem>.json per image.
  if (args.out.empty()) return InvalidArgumentError("--out=FOLDER is required when --image is a folder");
  if (!args.json_out.empty())
    return InvalidArgumentError("--json_out is for one image; a folder gets <out>/<stem>.json");
  const fs::path out = ResolveUserPath(args.out);
  SPNAS_RETURN_IF_ERROR(MakeDirs(out.string()));
  std::vector<fs::path> images;
  for (const auto& entry : fs::directory_iterator(input)) {
    if (entry.is_regular_file() && IsImageFile(entry.path())) images.push_back(entry.path());
  }
  std::sort(images.begin(), images.end());
  if (images.empty()) return NotFoundError("no .png, .jpg or .bmp image in '", input, "'");
  std::vector<std::string> failed;
  int64_t detections = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < images.size(); ++i) {
    const fs::path& image = images[i];
    StatusOr<nlohmann::json> json = PredictImage(m, names, image.string(), (out / image.filename()).string(),
                                                 (out / image.stem()).string() + ".json", args.score_threshold, device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "[" << i + 1 << "/" << images.size() << "] " << image.filename().string() << ": "
              << (json.ok() ? StrCat(json->size(), " detections") : json.status().message()) << " ("
              << FormatDuration(seconds) << ", ETA " << FormatDuration(seconds / (i + 1) * (images.size() - i - 1))
              << ")\n";
    if (json.ok()) {
      detections += static_cast<int64_t>(json->size());
    } else {
      failed.push_back(json.status().message());
    }
  }
  std::cout << images.size() - failed.size() << " images, " << detections
            << " detections with score >= " << args.score_threshold << " in " << out.string() << "\n";
  if (!failed.empty()) {
    std::string text;
    for (size_t i = 0; i < failed.size() && i < 10; ++i) text += "\n  " + failed[i];
    return InvalidArgumentError(failed.size(), " of ", images.size(), " images failed (the others are written):", text);
  }
  return Status::Ok();
}

Status CocoEval(const std::string& annotations, const std::string& detections) {
  const auto start = std::chrono::steady_clock::now();
  SPNAS_ASSIGN_OR_RETURN(CocoStats stats, EvaluateCocoFiles(ResolveUserPath(annotations), ResolveUserPath(detections)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << stats.Summary() << "evaluated in " << seconds << " s\n";
  return Status::Ok();
}

Status Convert(const std::string& weights, const std::string& model_config, const std::string& out_dir,
               const c10::Device& device) {
  SPNAS_ASSIGN_OR_RETURN(std::string text, ReadFile(ResolveUserPath(model_config)));
  PluginConfig desc;
  if (!google::protobuf::TextFormat::ParseFromString(text, &desc)) {
    return InvalidArgumentError("'", model_config, "' is not a model PluginConfig in text format (type + options)");
  }
  StatusOr<std::unique_ptr<Model>> built = ModelRegistry().Create(desc.type(), desc.options());
  if (!built.ok()) return Annotate(built.status(), ResolveUserPath(model_config));
  std::unique_ptr<Model> model = std::move(built).value();
  SPNAS_ASSIGN_OR_RETURN(StateDict state, LoadWeights(ResolveUserPath(weights)));
  const LoadReport report = LoadStateDict(*model, state);
  model->to(device);
  std::cout << "converted " << ResolveUserPath(weights) << ": " << report.Summary() << "\n";
  if (report.loaded.empty()) return InvalidArgumentError("no tensor of '", weights, "' matches the model by name");
  const RecordStore store(ResolveUserPath(out_dir));
  SPNAS_RETURN_IF_ERROR(MakeDirs(store.folder()));
  SPNAS_RETURN_IF_ERROR(SaveWeights(store.PendingWeightsPath(0), GetStateDict(*model)));
  Trial trial;
  trial.desc = desc;
  trial.record.set_id(0);
  trial.record.set_status(FINISHED);
  trial.record.set_has_weights(true);
  trial.record.set_parent(ResolveUserPath(weights));
  (*trial.record.mutable_metrics())["params"] = static_cast<double>(CountParameters(*model));
  (*trial.record.mutable_notes())["converted"] = report.Summary();
  SPNAS_RETURN_IF_ERROR(store.Write(trial));
  std::cout << "records folder " << store.folder() << " (use it as a step's models_folder)\n";
  return Status::Ok();
}

Status ExportDataset(const std::string& dataset, const std::string& out_dir, int max_images) {
  SPNAS_ASSIGN_OR_RETURN(PluginConfig config, DatasetFromSpec(dataset));
  SPNAS_ASSIGN_OR_RETURN(std::shared_ptr<Dataset> loaded, LoadDatasetCached(config));
  auto* data = dynamic_cast<DetectionDataset*>(loaded.get());
  if (data == nullptr) return InvalidArgumentError("export_coco needs a detection dataset");
  SPNAS_RETURN_IF_ERROR(ExportCoco(*data, ResolveUserPath(out_dir), max_images));
  std::cout << "wrote " << ResolveUserPath(out_dir) << "/annotations.json and images/\n";
  return Status::Ok();
}

}  // namespace spnas

namespace spnas {

namespace {

// python/spnas_torch's folder: $SPNAS_PYTHONPATH, else the binary's runfiles (bazel-bin, or
// `bazel run`), else the checkout the command runs in.
StatusOr<std::string> SpnasTorchPath() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("SPNAS_PYTHONPATH")) candidates.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(fs::path(exe.string() + ".runfiles") / "spnas" / "python");
  if (const char* runfiles = std::getenv("RUNFILES_DIR")) candidates.push_back(fs::path(runfiles) / "spnas" / "python");
  candidates.push_back(fs::path(ResolveUserPath("python")));
  for (const fs::path& dir : candidates) {
    if (fs::exists(dir / "spnas_torch" / "export.py")) return dir.string();
  }
  std::string tried;
  for (const fs::path& dir : candidates) tried += "\n  " + dir.string();
  return NotFoundError("python/spnas_torch not found; set SPNAS_PYTHONPATH to the checkout's python folder. Tried:",
                       tried);
}

}  // namespace

Status Export(const ExportArgs& args) {
  if (args.format != "onnx" && args.format != "torchscript") {
    return InvalidArgumentError("--format must be onnx or torchscript, got '", args.format, "'");
  }
  if (args.model_dir.empty() || args.out.empty()) return InvalidArgumentError("--model_dir and --out are required");
  const std::string model_dir = ResolveUserPath(args.model_dir);
  if (!fs::is_directory(model_dir)) return NotFoundError("--model_dir '", model_dir, "' is not a folder");
  std::string python = args.python;
  if (python.empty() && std::getenv("SPNAS_PYTHON") != nullptr) python = std::getenv("SPNAS_PYTHON");
  if (python.empty()) python = SPNAS_VENV_PYTHON;
  SPNAS_ASSIGN_OR_RETURN(std::string package_path, SpnasTorchPath());

  std::vector<std::string> argv = {python,
                                   "-m",
                                   "spnas_torch.export",
                                   "--model_dir=" + model_dir,
                                   "--format=" + args.format,
                                   "--out=" + ResolveUserPath(args.out)};
  if (args.id >= 0) argv.push_back(StrCat("--id=", args.id));
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  const char* old = std::getenv("PYTHONPATH");
  setenv("PYTHONPATH", (old != nullptr && *old != '\0') ? (package_path + ":" + old).c_str() : package_path.c_str(), 1);
  pid_t pid = 0;
  if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, c_argv.data(), environ) != 0) {
    return NotFoundError("cannot run the Python interpreter '", python, "': ", std::strerror(errno),
                         " (set --python or SPNAS_PYTHON)");
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InternalError("the export failed (", python, " -m spnas_torch.export; its error is above)");
  }
  return Status::Ok();
}

}  // namespace spnas
