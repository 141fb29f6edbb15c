// spnas: search, train and inspect detection backbones from a pipeline config.
//
//   spnas run --config=FILE [--local_base_path=DIR] [--resume | --overwrite] [--threads=N]
//   spnas validate --config=FILE
//   spnas list
#include <thread>

#include <ATen/Parallel.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "spnas/core/registry.h"
#include "spnas/pipeline/pipeline.h"

DEFINE_string(config, "", "Pipeline config (textproto).");
DEFINE_string(local_base_path, "", "Base folder of the run; overrides general.local_base_path.");
DEFINE_bool(resume, false, "Continue an interrupted run: keep finished steps and trials.");
DEFINE_bool(overwrite, false, "Delete the earlier output of the pipeline's steps and start over.");
DEFINE_int32(threads, -1, "Intra-op threads for LibTorch; overrides general.threads (0 = all cores).");

namespace spnas {
namespace {

constexpr char kUsage[] =
    "spnas <command> [flags]\n"
    "commands:\n"
    "  run --config=FILE [--local_base_path=DIR] [--resume|--overwrite] [--threads=N]\n"
    "      runs a pipeline; each step writes to {local_base_path}/output/<step>/\n"
    "  validate --config=FILE   checks a config and prints every error with file:line:column\n"
    "  list                     shows the registered plugins by kind";

int SetThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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
    }
  }
  return 0;
}

StatusOr<LoadedConfig> Load() {
  if (FLAGS_config.empty()) return InvalidArgumentError("--config=FILE is required");
  ConfigLoadOptions options;
  options.local_base_path = FLAGS_local_base_path;
  return LoadAndValidate(FLAGS_config, options);
}

int Validate() {
  StatusOr<LoadedConfig> config = Load();
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
  StatusOr<LoadedConfig> config = Load();
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  const int threads = SetThreads(FLAGS_threads >= 0 ? FLAGS_threads : config->config().general().threads());
  LOG(INFO) << "config " << config->path() << ", output " << config->base_path() << "/output, "
            << threads << " LibTorch threads, device " << config->config().general().device();
  RunOptions options;
  options.resume = FLAGS_resume;
  options.overwrite = FLAGS_overwrite;
  Status status = RunPipeline(*config, options);
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return 1;
  }
  LOG(INFO) << "pipeline finished; results in " << config->base_path() << "/output";
  return 0;
}

}  // namespace
}  // namespace spnas

int main(int argc, char** argv) {
  gflags::SetUsageMessage(spnas::kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc != 2) {
    std::cerr << spnas::kUsage << "\n";
    return 2;
  }
  const std::string command = argv[1];
  if (command == "list") return spnas::List();
  if (command == "validate") return spnas::Validate();
  if (command == "run") return spnas::Run();
  std::cerr << "unknown command '" << command << "'\n" << spnas::kUsage << "\n";
  return 2;
}
