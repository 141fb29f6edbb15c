#include "spnas/pipeline/pipeline.h"
#include "spnas/core/logging.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <chrono>
#include <filesystem>

#include "spnas/core/files.h"
#include "spnas/core/record_store.h"
#include "spnas/core/run_lock.h"
#include "spnas/core/run_log.h"
#include "spnas/core/step_folder.h"
#include "spnas/pipeline/pipe_step.h"
#include "spnas/report/report.h"
#include "spnas/trainers/trainer.h"
#include "spnas/trainers/trainer_options.pb.h"

namespace spnas {
namespace fs = std::filesystem;

namespace {

bool NonEmptyDir(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
}

// Whether a finished or interrupted step's saved config (`saved`, resolved text) is this run's
// config: equal but for steps this run appends after the saved config's last one, so that a
// study can add steps to a finished run.
bool SameRunConfig(const std::string& saved, const PipelineConfig& current) {
  PipelineConfig previous;
  if (!google::protobuf::TextFormat::ParseFromString(saved, &previous)) return false;
  if (previous.step_size() > current.step_size()) return false;
  PipelineConfig prefix = current;
  prefix.mutable_step()->DeleteSubrange(previous.step_size(), current.step_size() - previous.step_size());
  return google::protobuf::util::MessageDifferencer::Equals(previous, prefix);
}

// Checked here, where the device (general.device after --device) and each step's trainer are
// both known, so that a run does not stop at its first trial.
void CheckMixedPrecision(const LoadedConfig& config, int s, ConfigErrors* errors) {
  const PluginConfig& trainer = config.config().step(s).trainer();
  const std::string& device = config.config().general().device();
  if (!TrainerRegistry().Has(trainer.type()) || device.rfind("cuda", 0) == 0) return;
  auto options = TrainerRegistry().UnpackOptions(trainer.type(), trainer.options());
  const auto* trainer_options = options.ok() ? dynamic_cast<const TrainerOptions*>(options->get()) : nullptr;
  if (trainer_options == nullptr || trainer_options->mixed_precision() != TrainerOptions::FLOAT16) return;
  errors->Add(config.Where({{"step", s}, {"trainer", -1}, {"options", -1}, {"mixed_precision", -1}}),
              StrCat("mixed_precision FLOAT16 needs a CUDA device, but the configured device (general.device or "
                     "--device) is \"",
                     device, "\"; BFLOAT16 and FLOAT32 run on the CPU"));
}

}  // namespace

void ValidatePipeline(const LoadedConfig& config, ConfigErrors* errors, bool inputs_must_exist) {
  CheckConfig(config, errors, inputs_must_exist);
  const auto& steps = config.config().step();
  for (int s = 0; s < steps.size(); ++s) {
    CheckMixedPrecision(config, s, errors);
    const PluginConfig& pipe_step = steps[s].pipe_step();
    if (!PipeStepRegistry().Has(pipe_step.type())) continue;  // reported by CheckConfig
    auto step = PipeStepRegistry().Create(pipe_step.type(), pipe_step.options());
    if (step.ok()) (*step)->Validate(config, s, errors);
  }
}

StatusOr<LoadedConfig> LoadAndValidate(const std::string& path, const ConfigLoadOptions& options,
                                       bool inputs_must_exist, std::vector<std::string>* warnings) {
  ConfigErrors errors;
  StatusOr<LoadedConfig> config = LoadConfigFile(path, options, &errors);
  if (config.ok()) ValidatePipeline(*config, &errors, inputs_must_exist);
  if (warnings != nullptr) *warnings = errors.warnings();
  if (!errors.empty()) return errors.ToStatus();
  return config;
}

Status RunPipeline(const LoadedConfig& config, const RunOptions& options) {
  const auto& steps = config.config().step();
  const std::string resolved = config.ResolvedText();
  // Held until the run returns; a second run on this folder stops here.
  SPNAS_ASSIGN_OR_RETURN(const std::unique_ptr<RunLock> lock, RunLock::Acquire(config.base_path()));
  const RunLogFile log((fs::path(config.base_path()) / "output" / "run.log").string());

  // Never overwrite an earlier run's results unless asked to.
  std::vector<std::string> existing;
  for (const StepConfig& step : steps) {
    if (NonEmptyDir(config.OutputDir(step.name()))) existing.push_back(config.OutputDir(step.name()));
  }
  if (!existing.empty() && options.overwrite) {
    for (const std::string& dir : existing) {
      LOG(WARNING) << "--overwrite: deleting " << dir;
      fs::remove_all(dir);
    }
  } else if (!existing.empty() && !options.resume) {
    std::string list;
    for (const auto& dir : existing) list += "\n  " + dir;
    return FailedPreconditionError("output of an earlier run exists:", list,
                                   "\nPass --resume to continue it, --overwrite to delete it, or "
                                   "another --local_base_path.");
  }

  for (int s = 0; s < steps.size(); ++s) {
    const StepConfig& step = steps[s];
    StepContext context;
    context.config = &config;
    context.step = &step;
    context.output_dir = config.OutputDir(step.name());
    context.input_dir = config.InputDir(step);
    context.resume = options.resume;
    context.workers = options.workers;
    context.seed = StepSeed(config.config().general().seed(), s);

    const StepFolder folder(context.output_dir);
    const std::string status_path = folder.StatusPath();
    const std::string config_path = folder.ResolvedConfigPath();
    if (options.resume && fs::exists(config_path)) {
      StatusOr<std::string> previous = ReadFile(config_path);
      if (previous.ok() && !SameRunConfig(*previous, config.config())) {
        return FailedPreconditionError("step '", step.name(),
                                       "': the config differs from the one of the run "
                                       "being resumed (",
                                       config_path,
                                       "); resuming would mix results. Only steps appended after the last "
                                       "one may be added. Restore it, or pass --overwrite to start over.");
      }
    }
    if (options.resume && fs::exists(status_path)) {
      StepStatus done;
      SPNAS_ASSIGN_OR_RETURN(std::string text, ReadFile(status_path));
      SPNAS_RETURN_IF_ERROR(FromJson(text, status_path, &done));
      if (done.finished()) {
        LOG(INFO) << "[" << step.name() << "] finished in an earlier run; kept (" << done.trials() << " trials)";
        continue;
      }
    }

    SPNAS_RETURN_IF_ERROR(MakeDirs(context.output_dir));
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(config_path, resolved));
    LOG(INFO) << "[" << step.name() << "] step " << s + 1 << "/" << steps.size() << " (" << step.pipe_step().type()
              << ") -> " << context.output_dir;
    const auto start = std::chrono::steady_clock::now();
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<PipeStep> pipe_step,
                           PipeStepRegistry().Create(step.pipe_step().type(), step.pipe_step().options()));
    Status status = pipe_step->Run(context);
    if (!status.ok()) {
      return Status(status.code(), StrCat("step '", step.name(), "' failed: ", status.message()));
    }

    StepStatus done;
    done.set_step(step.name());
    done.set_finished(true);
    done.set_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> outputs, RecordStore(context.output_dir).LoadAll());
    SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> trials, RecordStore(folder.AllTrialsDir()).LoadAll());
    done.set_trials(static_cast<int>(trials.size()));
    for (const Trial& t : trials) done.set_failed(done.failed() + (t.record.status() != FINISHED));
    for (const Trial& t : outputs) done.add_output_ids(t.record.id());
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(status_path, ToJson(done)));
    LOG(INFO) << "[" << step.name() << "] done in " << done.seconds() << " s: " << done.trials() << " trials, "
              << done.failed() << " failed, " << done.output_ids_size() << " output records";
  }
  SPNAS_ASSIGN_OR_RETURN(std::string report, WriteReport(config));
  LOG(INFO) << "report: " << report;
  return Status::Ok();
}

}  // namespace spnas
