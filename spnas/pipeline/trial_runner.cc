#include "spnas/pipeline/trial_runner.h"
#include "spnas/core/logging.h"

#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "spnas/core/files.h"
#include "spnas/core/format.h"
#include "spnas/core/step_folder.h"
#include "spnas/core/version.h"

namespace spnas {
namespace fs = std::filesystem;

std::string RecordLabel(const std::string& folder, int id) {
  fs::path path = fs::path(folder).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "a/b/" names "b"
  return StrCat(path.filename().string(), "/", id);
}

StatusOr<std::vector<Trial>> LoadInputs(const StepContext& context) {
  const std::string& dir = context.input_dir;
  SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> inputs, RecordStore(dir).LoadAll());
  std::vector<Trial> usable;
  for (Trial& t : inputs) {
    if (t.record.status() == FINISHED) usable.push_back(std::move(t));
  }
  if (usable.empty()) {
    std::string producer = fs::path(dir).lexically_normal().filename().string();
    return FailedPreconditionError("step '", context.step->name(), "': models_folder '", dir,
                                   "' holds no finished records (performance_<id>.json); step '", producer,
                                   "' should have written them. Run it first.");
  }
  return usable;
}

std::vector<std::map<std::string, double>> LineageMetrics(const std::string& input_dir,
                                                          const std::vector<Trial>& inputs) {
  const fs::path output = fs::path(input_dir).lexically_normal().parent_path();
  std::map<std::string, std::vector<Trial>> folders;  // step -> its records, loaded once
  std::vector<std::map<std::string, double>> result;
  for (const Trial& input : inputs) {
    std::map<std::string, double> metrics;
    for (const auto& [key, value] : input.record.metrics()) metrics[key] = value;
    std::string label = input.record.parent();
    for (int hop = 0; hop < 16; ++hop) {  // lineages are a few steps long
      const auto parent = ParseRecordLabel(label);
      if (!parent) break;
      const auto& [step, id] = *parent;
      if (!folders.count(step)) {
        auto loaded = RecordStore((output / step).string()).LoadAll();
        folders[step] = loaded.ok() ? std::move(*loaded) : std::vector<Trial>();
      }
      const Trial* ancestor = nullptr;
      for (const Trial& t : folders[step]) {
        if (t.record.id() == id) ancestor = &t;
      }
      if (ancestor == nullptr) break;
      for (const auto& [key, value] : ancestor->record.metrics()) metrics.insert({key, value});
      label = ancestor->record.parent();
    }
    result.push_back(std::move(metrics));
  }
  return result;
}

TrialRunner::TrialRunner(const StepContext& context, RecordStore store, int budget, int done)
    : context_(context), store_(std::move(store)), budget_(budget), done_(done) {
  provenance_.set_spnas_version(kSpnasVersion);
  provenance_.set_libtorch_version(TORCH_VERSION);
  provenance_.set_device(context.general().device().empty() ? "cpu" : context.general().device());
  provenance_.set_threads(at::get_num_threads());
  char host[256] = "";
  ::gethostname(host, sizeof(host) - 1);
  provenance_.set_host(host);
  provenance_.set_config_fingerprint(context.config->Fingerprint());
  provenance_.set_commit(BuildCommit());
}

StatusOr<TrainJob> TrialRunner::Start(TrainJob job, const std::string& parent_label, const Point& hyperparameters,
                                      TrainerPool& pool, Trainer* trainer) const {
  job.weights_out = store_.PendingWeightsPath(job.trial_id);
  job.step = &context_;
  // The trial's training checkpoint: a resumed run continues a cut-off trial from it.
  job.checkpoint = StepFolder::CheckpointPath(store_.WeightsPath(job.trial_id), "last");
  job.resume = context_.resume;
  std::error_code ec;
  fs::remove(job.weights_out, ec);
  std::string what;
  for (const auto& [key, value] : hyperparameters) what += StrCat(" ", key, "=", value);
  if (what.empty()) what = " " + job.model.type();
  LOG(INFO) << "[" << context_.step->name() << "] trial " << job.trial_id << " starts:" << what
            << (parent_label.empty() ? "" : " (from " + parent_label + ")");
  SPNAS_RETURN_IF_ERROR(pool.Submit(job, trainer));
  return job;
}

StatusOr<Trial> TrialRunner::Commit(const TrainJob& job, const std::string& parent_label, const Point& hyperparameters,
                                    TrainerPool::Done done) {
  const int id = job.trial_id;
  Trial trial;
  TrialRecord& record = trial.record;
  record.set_id(id);
  record.set_parent(parent_label);
  for (const Mutation& m : job.mutations) *record.add_mutations() = m;
  *record.mutable_provenance() = provenance_;
  for (const auto& [key, value] : hyperparameters) (*record.mutable_hyperparameters())[key] = value;

  TrainResult result;
  if (done.result.ok()) {
    result = std::move(done.result).value();
  } else if (done.result.status().code() == StatusCode::kResourceExhausted) {
    // A full disk is not the candidate's fault: the run stops, and --resume redoes this trial.
    return done.result.status();
  } else {
    result.status = FAILED;
    result.error = done.result.status().ToString();
  }
  const double seconds = done.seconds;

  record.set_status(result.status);
  record.set_error(result.error);
  record.set_train_seconds(seconds);
  for (const auto& [key, value] : result.metrics) (*record.mutable_metrics())[key] = value;
  for (const auto& [key, value] : result.notes) (*record.mutable_notes())[key] = value;
  std::error_code ec;
  const bool keep_weights = result.wrote_weights && result.status == FINISHED && fs::exists(job.weights_out);
  if (!keep_weights) fs::remove(job.weights_out, ec);
  record.set_has_weights(keep_weights);
  trial.desc = result.model.type().empty() ? job.model : result.model;
  SPNAS_RETURN_IF_ERROR(store_.Write(trial));
  if (keep_weights) trial.weights = store_.WeightsPath(id);
  // Recorded: the trial will not be resumed.
  fs::remove(job.checkpoint, ec);

  ++run_;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string metrics;
  for (const auto& [key, value] : result.metrics) metrics += StrCat(" ", key, "=", value);
  std::string progress = StrCat("trial ", id, " ", TrialStatus_Name(result.status), " in ", FormatDuration(seconds));
  if (budget_ > 0) {
    const int finished = done_ + run_;
    const int left = std::max(0, budget_ - finished);
    progress += StrCat(" [", finished, "/", budget_, "], step ETA ", FormatDuration(left * wall / run_));
  }
  if (result.status == FINISHED) {
    LOG(INFO) << "[" << context_.step->name() << "] " << progress << ":" << metrics;
  } else {
    LOG(WARNING) << "[" << context_.step->name() << "] " << progress << ": " << result.error
                 << " (recorded; the step goes on)";
  }
  return trial;
}

}  // namespace spnas
