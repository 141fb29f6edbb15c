// The records of one step's folder: desc_<id>.json (the model, a PluginConfig),
// performance_<id>.json (a TrialRecord), model_<id>.pth (weights), summary.csv.
// A record exists once its performance file exists; it is written last and atomically, so a
// crash leaves either a whole record or none.
#ifndef SPNAS_CORE_RECORD_STORE_H_
#define SPNAS_CORE_RECORD_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/records.pb.h"
#include "spnas/core/status.h"

namespace spnas {

struct Trial {
  TrialRecord record;
  PluginConfig desc;
  std::string weights;  // path of model_<id>.pth, or "" when it has none
};

class RecordStore {
 public:
  explicit RecordStore(std::string folder) : folder_(std::move(folder)) {}
  const std::string& folder() const { return folder_; }

  std::string DescPath(int id) const;
  std::string PerformancePath(int id) const;
  std::string WeightsPath(int id) const;
  // Where a trainer writes weights before the record is committed.
  std::string PendingWeightsPath(int id) const;

  // Every complete record, by id.
  StatusOr<std::vector<Trial>> LoadAll() const;
  // Commits a trial: weights (from PendingWeightsPath when has_weights), desc, then performance.
  Status Write(const Trial& trial) const;
  // Copies (hard-links when possible) a complete record `trial` of the store `from`, keeping its id.
  Status Import(const Trial& trial, const RecordStore& from) const;
  Status WriteSummary(const std::vector<Trial>& trials) const;

 private:
  std::string folder_;
};

// A mutation as a short text for tables: "expand:5", "swap_width:3>4", "swap_stage:6:2>3",
// "add_stage", "parallel:[0,1,2,1]".
// The step (or folder) and id of a record's parent label "<step>/<id>"; nullopt for any other
// text (no parent, a pretrained file).
std::optional<std::pair<std::string, int>> ParseRecordLabel(const std::string& label);

std::string MutationText(const Mutation& mutation);
// The mutations of a record joined by `separator`.
std::string MutationsText(const google::protobuf::RepeatedPtrField<Mutation>& mutations, const std::string& separator);

std::string ToJson(const google::protobuf::Message& message);
Status FromJson(const std::string& json, const std::string& path, google::protobuf::Message* message);

}  // namespace spnas

#endif  // SPNAS_CORE_RECORD_STORE_H_
