// The layout of a step's output folder, {local_base_path}/output/<step>/, named in one place:
//   config.textproto   the resolved config of the run (a resume must match it)
//   step_status.json   written when the step has finished (a StepStatus)
//   trials/            every trial of a search step; the folder itself holds the step's outputs
//   desc_<id>.json, performance_<id>.json, model_<id>.pth, summary.csv: see RecordStore
//   model_<id>.last.pth, model_<id>.best.pth: a trial's checkpoints beside its weights
//   metrics_<id>.jsonl: a trial's training curves beside its weights
#ifndef SPNAS_CORE_STEP_FOLDER_H_
#define SPNAS_CORE_STEP_FOLDER_H_

#include <string>

namespace spnas {

class StepFolder {
 public:
  explicit StepFolder(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  std::string ResolvedConfigPath() const;
  std::string StatusPath() const;
  std::string TrialsDir() const;
  // Where every trial of the step is: TrialsDir() when it exists (search steps), else dir().
  std::string AllTrialsDir() const;

  // Checkpoint `which` ("last", "best") of the trial whose weights go to `weights_path`
  // (model_<id>.pth, or its pending name): model_<id>.<which>.pth in the same folder.
  static std::string CheckpointPath(const std::string& weights_path, const std::string& which);
  // The training curves of trial `trial_id` (MetricsLog) in `folder`, beside its weights:
  // metrics_<id>.jsonl.
  static std::string MetricsLogPath(const std::string& folder, int trial_id);

 private:
  std::string dir_;
};

}  // namespace spnas

#endif  // SPNAS_CORE_STEP_FOLDER_H_
