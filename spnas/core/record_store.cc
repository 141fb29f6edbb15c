#include "spnas/core/record_store.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include <google/protobuf/util/json_util.h>

#include "spnas/core/files.h"

namespace spnas {
namespace fs = std::filesystem;

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

Status FromJson(const std::string& json, const std::string& path, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  if (!status.ok()) {
    return InvalidArgumentError("'", path, "' is not a valid ", message->GetDescriptor()->full_name(),
                                " in JSON: ", status.ToString());
  }
  return Status::Ok();
}

std::string RecordStore::DescPath(int id) const {
  return (fs::path(folder_) / ("desc_" + std::to_string(id) + ".json")).string();
}
std::string RecordStore::PerformancePath(int id) const {
  return (fs::path(folder_) / ("performance_" + std::to_string(id) + ".json")).string();
}
std::string RecordStore::WeightsPath(int id) const {
  return (fs::path(folder_) / ("model_" + std::to_string(id) + ".pth")).string();
}
std::string RecordStore::PendingWeightsPath(int id) const { return WeightsPath(id) + ".pending"; }

StatusOr<std::vector<Trial>> RecordStore::LoadAll() const {
  std::vector<Trial> trials;
  if (!fs::is_directory(folder_)) return trials;
  const std::regex pattern("performance_([0-9]{1,9})\\.json");
  std::set<int> ids;
  for (const auto& entry : fs::directory_iterator(folder_)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, pattern)) ids.insert(std::stoi(m[1]));
  }
  for (int id : ids) {
    Trial trial;
    SPNAS_ASSIGN_OR_RETURN(std::string perf, ReadFile(PerformancePath(id)));
    SPNAS_RETURN_IF_ERROR(FromJson(perf, PerformancePath(id), &trial.record));
    StatusOr<std::string> desc = ReadFile(DescPath(id));
    if (!desc.ok()) {
      return FailedPreconditionError("record ", id, " in '", folder_, "' has ", PerformancePath(id), " but no ",
                                     DescPath(id));
    }
    SPNAS_RETURN_IF_ERROR(FromJson(*desc, DescPath(id), &trial.desc));
    if (trial.record.has_weights()) {
      trial.weights = WeightsPath(id);
      if (!fs::exists(trial.weights)) {
        return FailedPreconditionError("record ", id, " in '", folder_, "' says it has weights, but ", trial.weights,
                                       " is missing");
      }
    }
    trials.push_back(std::move(trial));
  }
  return trials;
}

Status RecordStore::Write(const Trial& trial) const {
  SPNAS_RETURN_IF_ERROR(MakeDirs(folder_));
  const int id = trial.record.id();
  if (trial.record.has_weights()) {
    SPNAS_RETURN_IF_ERROR(RenameFile(PendingWeightsPath(id), WeightsPath(id)));
  }
  Status written = WriteFileAtomic(DescPath(id), ToJson(trial.desc));
  if (written.ok()) written = WriteFileAtomic(PerformancePath(id), ToJson(trial.record));
  if (!written.ok()) {
    // No half record stays behind (a full disk): the trial is redone on --resume.
    std::error_code ignored;
    fs::remove(DescPath(id), ignored);
    fs::remove(WeightsPath(id), ignored);
  }
  return written;
}

namespace {

// Hard-links `from` as `to` (copies across file systems), replacing `to`.
Status LinkOrCopy(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::remove(to, ec);
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return InternalError("Cannot copy '", from, "' to '", to, "': ", ec.message());
  return Status::Ok();
}

}  // namespace

Status RecordStore::Import(const Trial& trial, const RecordStore& from) const {
  SPNAS_RETURN_IF_ERROR(MakeDirs(folder_));
  const int id = trial.record.id();
  // The source files are already written durably: links cost no data writes and no fsyncs,
  // which for a step publishing hundreds of records is most of its time.
  if (trial.record.has_weights()) SPNAS_RETURN_IF_ERROR(LinkOrCopy(trial.weights, WeightsPath(id)));
  SPNAS_RETURN_IF_ERROR(LinkOrCopy(from.DescPath(id), DescPath(id)));
  return LinkOrCopy(from.PerformancePath(id), PerformancePath(id));  // last: it marks the record whole
}

Status RecordStore::WriteSummary(const std::vector<Trial>& trials) const {
  std::set<std::string> metric_names;
  for (const Trial& t : trials) {
    for (const auto& [name, value] : t.record.metrics()) metric_names.insert(name);
  }
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string csv = "id,status,parent,model";
  for (const auto& name : metric_names) csv += "," + name;
  csv += ",train_seconds,mutations,error\n";
  for (const Trial& t : trials) {
    const TrialRecord& r = t.record;
    std::string hyper;
    for (const auto& [key, value] : r.hyperparameters()) hyper += (hyper.empty() ? "" : " ") + key + "=" + value;
    csv += std::to_string(r.id()) + "," + TrialStatus_Name(r.status()) + "," + quote(r.parent()) + "," +
           quote(hyper.empty() ? t.desc.type() : hyper);
    for (const auto& name : metric_names) {
      auto it = r.metrics().find(name);
      csv += "," + (it == r.metrics().end() ? std::string() : std::to_string(it->second));
    }
    csv += "," + std::to_string(r.train_seconds()) + "," + quote(MutationsText(r.mutations(), "; ")) + "," +
           quote(r.error()) + "\n";
  }
  return WriteFileAtomic((fs::path(folder_) / "summary.csv").string(), csv);
}

std::optional<std::pair<std::string, int>> ParseRecordLabel(const std::string& label) {
  const size_t slash = label.rfind('/');
  // At most 9 digits, as record files are named (RecordStore::LoadAll): no int overflow.
  if (slash == std::string::npos || slash == 0 || slash + 1 == label.size() || label.size() - slash - 1 > 9) {
    return std::nullopt;
  }
  int id = 0;
  for (size_t i = slash + 1; i < label.size(); ++i) {
    if (label[i] < '0' || label[i] > '9') return std::nullopt;
    id = id * 10 + (label[i] - '0');
  }
  return std::make_pair(label.substr(0, slash), id);
}

std::string MutationText(const Mutation& m) {
  switch (m.kind_case()) {
    case Mutation::kExpand:
      return StrCat("expand:", m.expand().child_block());
    case Mutation::kSwapWidth:
      return StrCat("swap_width:", m.swap_width().from_block(), ">", m.swap_width().to_block());
    case Mutation::kSwapStage:
      return StrCat("swap_stage:", m.swap_stage().block(), ":", m.swap_stage().from_stage(), ">",
                    m.swap_stage().to_stage());
    case Mutation::kAddStage:
      return "add_stage";
    case Mutation::kParallel: {
      std::string s = "parallel:[";
      for (int i = 0; i < m.parallel().code_size(); ++i) s += StrCat(i ? "," : "", m.parallel().code(i));
      return s + "]";
    }
    case Mutation::kReignition:
      return "reignition";
    case Mutation::KIND_NOT_SET:
      break;
  }
  return "unknown";
}

std::string MutationsText(const google::protobuf::RepeatedPtrField<Mutation>& mutations, const std::string& separator) {
  std::string text;
  for (const Mutation& m : mutations) text += (text.empty() ? "" : separator) + MutationText(m);
  return text;
}

}  // namespace spnas
