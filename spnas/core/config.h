// Loading a pipeline config: strict textproto parsing, `ref` resolution, {local_base_path}
// substitution and validation, with every error reported as file:line:column.
#ifndef SPNAS_CORE_CONFIG_H_
#define SPNAS_CORE_CONFIG_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/text_format.h>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"

namespace spnas {

// A path to a field in the config, e.g. {{"step", 1}, {"trainer", -1}, {"options", -1}};
// index -1 for a singular field.
using FieldPath = std::vector<std::pair<std::string, int>>;

// Collects every error of a config before any work starts.
class ConfigErrors {
 public:
  void Add(std::string where, std::string message);
  // Problems that do not stop a check of the config alone (e.g. an input file that does not
  // exist yet); `run` treats them as errors.
  void AddWarning(std::string where, std::string message);
  const std::vector<std::string>& warnings() const { return warnings_; }
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  // InvalidArgument listing all errors, one per line; OK when there are none.
  Status ToStatus() const;

 private:
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

struct ConfigLoadOptions {
  // Replace general.local_base_path and general.device when non-empty.
  std::string local_base_path;
  std::string device;
};

class LoadedConfig {
 public:
  const std::string& path() const { return path_; }
  const PipelineConfig& config() const { return config_; }
  const std::string& base_path() const { return config_.general().local_base_path(); }
  std::string OutputDir(const std::string& step_name) const;
  // The folder a step reads records from (its models_folder resolved), or "".
  std::string InputDir(const StepConfig& step) const;
  // "file:line:column" of a field (also one inside plugin options or inherited through `ref`),
  // or of its nearest enclosing field that has a recorded location, or "file".
  std::string Where(const FieldPath& field) const;
  // The config as text, with every ref resolved and {local_base_path} substituted.
  std::string ResolvedText() const;
  // 64-bit FNV-1a of ResolvedText() (but its first line, the file's name) in hex: names the
  // config in records, stable across builds and machines.
  std::string Fingerprint() const;

 private:
  friend StatusOr<LoadedConfig> ParseConfig(const std::string&, const std::string&, const ConfigLoadOptions&,
                                            ConfigErrors*);
  // The location of the deepest field of `field` written in the config; returns how many of
  // its parts were found.
  size_t Locate(const FieldPath& field, google::protobuf::TextFormat::ParseLocation* location) const;

  std::string path_;
  PipelineConfig config_;
  std::shared_ptr<google::protobuf::TextFormat::ParseInfoTree> locations_;
  // Where the plugin that a step's slot names with `ref` is written: {{"step", s}, {slot, i}} ->
  // {{"shared", j}, {"plugin", -1}} or {{"step", t}, {slot, -1}}.
  std::map<FieldPath, FieldPath> ref_sources_;
};

// Parses, resolves and checks `text` (named `path` in messages). Errors go to `errors`; the
// returned config is usable for further checks only when `errors` stayed empty of parse errors.
StatusOr<LoadedConfig> ParseConfig(const std::string& text, const std::string& path, const ConfigLoadOptions& options,
                                   ConfigErrors* errors);

// Reads the file, then ParseConfig.
StatusOr<LoadedConfig> LoadConfigFile(const std::string& path, const ConfigLoadOptions& options, ConfigErrors* errors);

// Checks plugin names and options anywhere in the config (against the registries linked into
// this binary), that every float and double is finite, step names, general settings, and the
// wiring of models_folder and pretrained_model_file between steps.
// With inputs_must_exist false, a models_folder or pretrained_model_file that no step of this
// pipeline writes and that does not exist is a warning (validate), else an error (run).
void CheckConfig(const LoadedConfig& config, ConfigErrors* errors, bool inputs_must_exist = true);

// Overrides `to` with the fields set in `from` (same type): set scalars and repeated fields
// replace, set message fields merge recursively.
void OverrideFields(const google::protobuf::Message& from, google::protobuf::Message* to);

}  // namespace spnas

#endif  // SPNAS_CORE_CONFIG_H_
