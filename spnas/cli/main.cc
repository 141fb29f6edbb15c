// spnas: search, train and inspect detection backbones from a pipeline config.
//
//   spnas run --config=FILE [--local_base_path=DIR] [--resume | --overwrite] [--threads=N] [--device=D]
//   spnas validate --config=FILE [--device=D]
//   spnas list
//   spnas help <command>   (each command takes only its own flags)
#include <thread>

#include <ATen/Parallel.h>
#include <gflags/gflags.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "spnas/cli/build_commit.h"
#include "spnas/cli/model_commands.h"
#include "spnas/core/logging.h"
#include "spnas/core/parallel.h"
#include "spnas/core/registry.h"
#include "spnas/core/version.h"
#include "spnas/device/device.h"
#include "spnas/distributed/remote_trainer_pool.h"
#include "spnas/distributed/worker.h"
#include "spnas/distributed/world.h"
#include "spnas/pipeline/pipeline.h"
#include "spnas/report/report.h"

DECLARE_bool(help);

DEFINE_string(config, "", "Pipeline config (textproto).");
DEFINE_string(local_base_path, "", "Base folder of the run; overrides general.local_base_path.");
DEFINE_bool(resume, false, "Continue an interrupted run: keep finished steps and trials.");
DEFINE_bool(overwrite, false, "Delete the earlier output of the pipeline's steps and start over.");
DEFINE_int32(threads, -1, "Intra-op threads for LibTorch; overrides general.threads (0 = all cores).");
DEFINE_int32(connect_timeout, 60, "run, distributed: seconds the ranks have to meet at the master.");
DEFINE_double(worker_timeout, 10,
              "run, distributed: seconds without a heartbeat after which a worker's trial goes to another.");
DEFINE_string(device, "",
              "cpu, cuda or cuda:N; run/validate: overrides general.device; eval/predict/convert: default cpu.");
DEFINE_string(model_dir, "", "eval/predict/export: a step's output folder.");
DEFINE_int32(id, -1, "eval/predict/export: the record to use (default: the best by mAP).");
DEFINE_string(dataset, "",
              "eval/export_coco: fashiondet:<split>[:<n>[:<canvas>]], coco:<ann.json>:<dir>, voc:<root>:<set>.");
DEFINE_string(detections_out, "", "eval: also write the detections in the COCO results format.");
DEFINE_int32(max_images, 0, "eval/export_coco: at most this many images (0 = all).");
DEFINE_string(image, "", "predict: the input image, or a folder of images.");
DEFINE_string(out, "",
              "predict: the image with boxes (a folder, for a folder of images); export: the model file; "
              "convert/export_coco: the output folder.");
DEFINE_string(json_out, "", "predict: the detections as JSON.");
DEFINE_double(score_threshold, 0.5, "predict: the lowest score drawn.");
DEFINE_string(annotations, "", "cocoeval: a COCO annotation file.");
DEFINE_string(detections, "", "cocoeval: detections in the COCO results format.");
DEFINE_string(weights, "", "convert: a checkpoint written by torch.save (torchvision's).");
DEFINE_string(model_config, "", "convert: the model as a textproto PluginConfig (type + options).");
DEFINE_string(format, "onnx", "export: onnx or torchscript.");
DEFINE_string(python, "", "export: the Python interpreter (default $SPNAS_PYTHON, else the build's environment).");

namespace spnas {
namespace {

// The commands and the flags each takes: a flag of another command is an error.
struct Command {
  std::string name;
  std::string summary;
  std::vector<std::string> flags;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"run",
       "runs a pipeline; each step writes to {local_base_path}/output/<step>/ (distributed under torchrun or srun)",
       {"config", "local_base_path", "resume", "overwrite", "threads", "device", "connect_timeout", "worker_timeout"}},
      {"validate",
       "checks a config and prints every error with file:line:column",
       {"config", "local_base_path", "device"}},
      {"list", "shows the registered plugins by kind, with their defaults", {}},
      {"report", "writes output/report.html from the records", {"config", "local_base_path"}},
      {"eval",
       "COCO and VOC metrics of a saved model (default dataset: its step's val_data)",
       {"model_dir", "id", "dataset", "detections_out", "max_images", "threads", "device"}},
      {"predict",
       "detections of a saved model on one image, drawn and as JSON",
       {"model_dir", "id", "image", "out", "json_out", "score_threshold", "threads", "device"}},
      {"cocoeval", "the 12 COCO stats of a results file", {"annotations", "detections"}},
      {"convert",
       "torchvision weights -> a records folder (model_0) for a step's models_folder",
       {"weights", "model_config", "out", "threads", "device"}},
      {"export",
       "a saved model as an ONNX or TorchScript file (by python/spnas_torch), for use without spnas",
       {"model_dir", "id", "format", "out", "python"}},
      {"export_coco", "a dataset as COCO JSON + PNGs", {"dataset", "out", "max_images"}},
  };
  return commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string Usage() {
  std::string usage = "spnas <command> [flags]\ncommands:\n";
  for (const Command& c : Commands())
    usage += StrCat("  ", c.name, std::string(13 - c.name.size(), ' '), c.summary, "\n");
  return usage + "`spnas help <command>` or `spnas <command> --help` lists a command's flags.";
}

std::string CommandHelp(const Command& c) {
  std::string help = StrCat("spnas ", c.name, ": ", c.summary, "\nflags:\n");
  if (c.flags.empty()) help += "  (none)\n";
  for (const std::string& flag : c.flags) {
    gflags::CommandLineFlagInfo info;
    gflags::GetCommandLineFlagInfo(flag.c_str(), &info);
    help += StrCat("  --", flag, "  ", info.description,
                   info.default_value.empty() ? "" : StrCat(" (default ", info.default_value, ")"), "\n");
  }
  return help;
}

// Flags of spnas (not glog's) given on the command line that the command does not take.
Status CheckFlags(const Command& c) {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& info : flags) {
    if (info.is_default || info.filename != __FILE__) continue;
    if (std::find(c.flags.begin(), c.flags.end(), info.name) != c.flags.end()) continue;
    std::string own;
    for (const std::string& flag : c.flags) own += StrCat(own.empty() ? "" : ", ", "--", flag);
    return InvalidArgumentError("--", info.name, " is not a flag of '", c.name,
                                "'; its flags: ", own.empty() ? "none" : own);
  }
  return Status::Ok();
}

// A numeric flag with a value it cannot mean is an error before anything runs. The -1 default
// of --threads and --id means "not given", so for them only a value on the command line counts.
Status CheckFlagValues() {
  auto given = [](const char* name) {
    gflags::CommandLineFlagInfo info;
    return gflags::GetCommandLineFlagInfo(name, &info) && !info.is_default;
  };
  if (given("threads") && FLAGS_threads < 0) {
    return InvalidArgumentError("--threads must be >= 0 (0 = all cores), got ", FLAGS_threads);
  }
  if (given("id") && FLAGS_id < 0) {
    return InvalidArgumentError("--id must be >= 0 (leave it out for the best record), got ", FLAGS_id);
  }
  if (FLAGS_connect_timeout <= 0) {
    return InvalidArgumentError("--connect_timeout must be > 0 seconds, got ", FLAGS_connect_timeout);
  }
  if (!std::isfinite(FLAGS_worker_timeout) || FLAGS_worker_timeout <= 0) {
    return InvalidArgumentError("--worker_timeout must be a finite number of seconds > 0, got ", FLAGS_worker_timeout);
  }
  if (FLAGS_max_images < 0) {
    return InvalidArgumentError("--max_images must be >= 0 (0 = all), got ", FLAGS_max_images);
  }
  // Scores are in [0, 1]; the negated test also refuses nan.
  if (!(FLAGS_score_threshold >= 0 && FLAGS_score_threshold <= 1)) {
    return InvalidArgumentError("--score_threshold must be in [0, 1], got ", FLAGS_score_threshold);
  }
  return Status::Ok();
}

int SetThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#ifdef SPNAS_THREAD_SANITIZER
  threads = 1;  // LibTorch's OpenMP pool, whose synchronisation TSan cannot see (core/parallel.h)
#endif
  at::set_num_threads(threads);
  return at::get_num_threads();
}

int List() {
  for (const RegistryBase* registry : AllRegistries()) {
    std::cout << registry->kind() << ":\n";
    const auto names = registry->Names();
    if (names.empty()) std::cout << "  (none linked)\n";
    for (const auto& name : names) {
      const PluginInfo info = registry->Info(name).value();
      std::cout << "  " << name << "  (options: " << info.options_type << ")\n";
      const std::string defaults = info.default_options->ShortDebugString();
      if (!defaults.empty()) std::cout << "      defaults: " << defaults << "\n";
    }
  }
  return 0;
}

StatusOr<LoadedConfig> Load(bool for_run, std::vector<std::string>* warnings = nullptr) {
  if (FLAGS_config.empty()) return InvalidArgumentError("--config=FILE is required");
  ConfigLoadOptions options;
  options.local_base_path = FLAGS_local_base_path;
  options.device = FLAGS_device;
  return LoadAndValidate(FLAGS_config, options, for_run, warnings);
}

int Validate() {
  std::vector<std::string> warnings;
  StatusOr<LoadedConfig> config = Load(/*for_run=*/false, &warnings);
  for (const std::string& w : warnings) std::cerr << "note: " << w << " (needed to run it)\n";
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  std::cout << config->path() << ": OK (" << config->config().step_size() << " steps)\n";
  return 0;
}

int Run() {
  if (FLAGS_resume && FLAGS_overwrite) {
    std::cerr << "--resume and --overwrite exclude each other\n";
    return 2;
  }
  StatusOr<LoadedConfig> config = Load(/*for_run=*/true);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  // Started by torchrun or srun: rank 0 runs the pipeline, the other ranks train its trials.
  StatusOr<World> world = WorldFromEnvironment();
  if (!world.ok()) {
    std::cerr << world.status().message() << "\n";
    return 1;
  }
  // One GPU per process: "cuda" is cuda:LOCAL_RANK.
  SetLocalRank(world->local_rank);
  // A GPU that is not there stops the run before any work.
  StatusOr<c10::Device> device = ResolveDevice(config->config().general().device());
  if (!device.ok()) {
    std::cerr << config->path() << ": general.device: " << device.status().message() << "\n";
    return 1;
  }
  const int threads = SetThreads(FLAGS_threads >= 0 ? FLAGS_threads : config->config().general().threads());
  LOG(INFO) << "config " << config->path() << ", output " << config->base_path() << "/output, " << threads
            << " LibTorch threads, device " << device->str();
  RunOptions options;
  options.resume = FLAGS_resume;
  options.overwrite = FLAGS_overwrite;
  std::unique_ptr<RemoteTrainerPool> workers;
  if (world->distributed()) {
    LOG(INFO) << "distributed run: " << world->Describe();
    const std::chrono::seconds timeout(FLAGS_connect_timeout);
    StatusOr<c10::intrusive_ptr<c10d::Store>> store = ConnectStore(*world, timeout);
    Status met = store.status();
    const std::string identity =
        StrCat("config ", config->Fingerprint(), " and spnas ", kSpnasVersion, " (commit ", BuildCommit(), ")");
    if (met.ok()) met = AgreeOnRun(**store, *world, identity, timeout);
    if (!met.ok()) {
      LOG(ERROR) << "rank " << world->rank << ": " << met.message();
      return 1;
    }
    if (world->rank > 0) {
      const Status worked = RunWorker(*config, *world, *store, timeout,
                                      std::chrono::milliseconds(static_cast<int64_t>(FLAGS_worker_timeout * 1000)));
      if (!worked.ok()) LOG(ERROR) << worked.message();
      return worked.ok() ? 0 : 1;
    }
    workers = std::make_unique<RemoteTrainerPool>(
        *store, world->size, identity, std::chrono::milliseconds(static_cast<int64_t>(FLAGS_worker_timeout * 1000)),
        world->master_addr);
    options.workers = workers.get();
  }
  Status status = RunPipeline(*config, options);
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return 1;
  }
  LOG(INFO) << "pipeline finished; results in " << config->base_path() << "/output";
  return 0;
}

int Report(const Status& status) {
  if (status.ok()) return 0;
  std::cerr << status.message() << "\n";
  return 1;
}

int WriteReportCommand() {
  StatusOr<LoadedConfig> config = Load(/*for_run=*/false);
  if (!config.ok()) return Report(config.status());
  StatusOr<std::string> path = WriteReport(*config);
  if (!path.ok()) return Report(path.status());
  std::cout << *path << "\n";
  return 0;
}

int Dispatch(const std::string& command) {
  if (command == "report") return WriteReportCommand();
  SetThreads(FLAGS_threads >= 0 ? FLAGS_threads : 0);
  const bool uses_model = command == "eval" || command == "predict" || command == "convert";
  StatusOr<c10::Device> device = ResolveDevice(FLAGS_device.empty() ? "cpu" : FLAGS_device);
  if (uses_model && !device.ok()) return Report(device.status());
  if (command == "eval") {
    return Report(Eval({FLAGS_model_dir, FLAGS_dataset, FLAGS_detections_out, FLAGS_id, FLAGS_max_images}, *device));
  }
  if (command == "predict") {
    if (FLAGS_image.empty()) return Report(InvalidArgumentError("--image=FILE is required"));
    return Report(
        Predict({FLAGS_model_dir, FLAGS_image, FLAGS_out, FLAGS_json_out, FLAGS_id, FLAGS_score_threshold}, *device));
  }
  if (command == "export") return Report(Export({FLAGS_model_dir, FLAGS_format, FLAGS_out, FLAGS_python, FLAGS_id}));
  if (command == "cocoeval") {
    if (FLAGS_annotations.empty() || FLAGS_detections.empty()) {
      return Report(InvalidArgumentError("--annotations=A.json and --detections=D.json are required"));
    }
    return Report(CocoEval(FLAGS_annotations, FLAGS_detections));
  }
  if (command == "convert") {
    if (FLAGS_weights.empty() || FLAGS_model_config.empty() || FLAGS_out.empty()) {
      return Report(InvalidArgumentError("--weights, --model_config and --out are required"));
    }
    return Report(Convert(FLAGS_weights, FLAGS_model_config, FLAGS_out, *device));
  }
  if (command == "export_coco") {
    if (FLAGS_dataset.empty() || FLAGS_out.empty())
      return Report(InvalidArgumentError("--dataset and --out are required"));
    return Report(ExportDataset(FLAGS_dataset, FLAGS_out, FLAGS_max_images));
  }
  return -1;
}

}  // namespace
}  // namespace spnas

int main(int argc, char** argv) {
  gflags::SetUsageMessage(spnas::Usage());
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  spnas::KeepCpuMemoryForReuse();
  spnas::BuildCommit() = SPNAS_GIT_COMMIT;
  const std::string first = argc >= 2 ? argv[1] : "";
  if (first == "help" && argc == 3) {
    const spnas::Command* command = spnas::FindCommand(argv[2]);
    if (command == nullptr) {
      std::cerr << "unknown command '" << argv[2] << "'\n" << spnas::Usage() << "\n";
      return 2;
    }
    std::cout << spnas::CommandHelp(*command);
    return 0;
  }
  if (first == "help" || (argc == 1 && FLAGS_help)) {
    std::cout << spnas::Usage() << "\n";
    return 0;
  }
  if (argc != 2) {
    std::cerr << spnas::Usage() << "\n";
    return 2;
  }
  const spnas::Command* command = spnas::FindCommand(first);
  if (command == nullptr) {
    std::cerr << "unknown command '" << first << "'\n" << spnas::Usage() << "\n";
    return 2;
  }
  if (FLAGS_help) {
    std::cout << spnas::CommandHelp(*command);
    return 0;
  }
  spnas::Status flags = spnas::CheckFlags(*command);
  if (flags.ok()) flags = spnas::CheckFlagValues();
  if (!flags.ok()) {
    std::cerr << "spnas " << first << ": " << flags.message() << "\n";
    return 2;
  }
  if (first == "list") return spnas::List();
  if (first == "validate") return spnas::Validate();
  if (first == "run") return spnas::Run();
  return spnas::Dispatch(first);
}
