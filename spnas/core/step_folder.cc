#include "spnas/core/step_folder.h"

#include <filesystem>

namespace spnas {
namespace fs = std::filesystem;

std::string StepFolder::ResolvedConfigPath() const { return (fs::path(dir_) / "config.textproto").string(); }

std::string StepFolder::StatusPath() const { return (fs::path(dir_) / "step_status.json").string(); }

std::string StepFolder::TrialsDir() const { return (fs::path(dir_) / "trials").string(); }

std::string StepFolder::AllTrialsDir() const {
  std::error_code ec;
  return fs::is_directory(TrialsDir(), ec) ? TrialsDir() : dir_;
}

std::string StepFolder::CheckpointPath(const std::string& weights_path, const std::string& which) {
  const fs::path path(weights_path);
  std::string name = path.filename().string();
  name = name.substr(0, name.find(".pth"));  // model_<id>
  return (path.parent_path() / (name + "." + which + ".pth")).string();
}

std::string StepFolder::MetricsLogPath(const std::string& folder, int trial_id) {
  return (fs::path(folder) / ("metrics_" + std::to_string(trial_id) + ".jsonl")).string();
}

}  // namespace spnas
