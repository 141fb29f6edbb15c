#include "spnas/core/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/descriptor.h>

#include "spnas/core/pipeline_config.pb.h"

namespace spnas {
namespace {

// Leaked so that registries constructed during static initialisation can always add themselves.
std::vector<const RegistryBase*>& RegistryList() {
  static auto* list = new std::vector<const RegistryBase*>();
  return *list;
}

std::mutex& RegistryListMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(a[i - 1]) == std::tolower(b[j - 1]);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string JoinNames(const std::vector<std::string>& names) {
  if (names.empty()) return "(none)";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string NearestName(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = EditDistance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

RegistryBase::RegistryBase(std::string kind) : kind_(std::move(kind)) {
  std::lock_guard<std::mutex> lock(RegistryListMutex());
  RegistryList().push_back(this);
}

std::vector<std::string> RegistryBase::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, record] : records_) names.push_back(name);
  return names;
}

bool RegistryBase::Has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.count(name) > 0;
}

StatusOr<PluginInfo> RegistryBase::Info(const std::string& name) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(name);
    if (it != records_.end()) return it->second.info;
  }
  return UnknownNameError(name);
}

Status RegistryBase::UnknownNameError(const std::string& name) const {
  const std::vector<std::string> names = Names();
  std::string message = StrCat("No registered ", kind_, " named '", name, "'.");
  const std::string nearest = NearestName(name, names);
  if (!nearest.empty()) message += StrCat(" Did you mean '", nearest, "'?");
  message += StrCat(" Registered ", kind_, " names: ", JoinNames(names), ".", " A ", kind_,
                    " that exists in the source but not here is not linked into this "
                    "binary: add its cc_library (alwayslink = 1) to the binary's deps.");
  return NotFoundError(message);
}

Status RegistryBase::AddInfo(const PluginInfo& info, Validator validate, Defaulter set_defaults) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(info.name);
  if (it != records_.end()) {
    return AlreadyExistsError("Duplicate ", kind_, " name '", info.name, "': registered at ", it->second.info.file, ":",
                              it->second.info.line, " and at ", info.file, ":", info.line, ".");
  }
  records_[info.name] = Record{info, std::move(validate), std::move(set_defaults)};
  return Status::Ok();
}

StatusOr<std::unique_ptr<google::protobuf::Message>> RegistryBase::UnpackOptions(
    const std::string& name, const google::protobuf::Any& options) const {
  SPNAS_ASSIGN_OR_RETURN(PluginInfo info, Info(name));
  std::unique_ptr<google::protobuf::Message> message(info.default_options->New());
  if (!options.type_url().empty()) {
    const std::string& url = options.type_url();
    const std::string given = url.substr(url.find_last_of('/') + 1);
    if (given != info.options_type) {
      return InvalidArgumentError(kind_, " '", name, "' takes options of type ", info.options_type,
                                  ", but the config gives ", given, ".");
    }
    if (!options.UnpackTo(message.get())) {
      return InvalidArgumentError("Options of ", kind_, " '", name, "' could not be decoded as ", info.options_type,
                                  ".");
    }
  }
  Defaulter set_defaults;
  {
    std::lock_guard<std::mutex> lock(mu_);
    set_defaults = records_.at(name).set_defaults;
  }
  set_defaults(message.get());
  return message;
}

Status RegistryBase::ValidateUnpacked(const std::string& name, const google::protobuf::Message& unpacked,
                                      bool nested) const {
  Validator validate;
  {
    std::lock_guard<std::mutex> lock(mu_);
    validate = records_.at(name).validate;
  }
  Status status = validate(unpacked);
  if (status.ok() && nested) status = ValidateNestedPlugins(unpacked);
  if (!status.ok()) return Status(status.code(), StrCat(kind_, " '", name, "': ", status.message()));
  return Status::Ok();
}

Status RegistryBase::ValidateOwnOptions(const std::string& name, const google::protobuf::Any& options) const {
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> unpacked, UnpackOptions(name, options));
  return ValidateUnpacked(name, *unpacked, /*nested=*/false);
}

Status RegistryBase::ValidateOptions(const std::string& name, const google::protobuf::Any& options) const {
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> unpacked, UnpackOptions(name, options));
  return ValidateUnpacked(name, *unpacked, /*nested=*/true);
}

namespace {

void CollectPluginFields(const google::protobuf::Message& message, std::vector<std::pair<std::string, int>>* path,
                         std::vector<PluginField>* out) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        field->message_type() == google::protobuf::Any::descriptor()) {
      continue;
    }
    const int n = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < n; ++i) {
      const google::protobuf::Message& sub = field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                                                  : reflection->GetMessage(message, field);
      path->emplace_back(field->name(), field->is_repeated() ? i : -1);
      if (field->options().HasExtension(plugin_kind)) {
        out->push_back({static_cast<const PluginConfig*>(&sub), field->options().GetExtension(plugin_kind), *path});
      } else {
        CollectPluginFields(sub, path, out);
      }
      path->pop_back();
    }
  }
}

}  // namespace

std::vector<PluginField> PluginFieldsOf(const google::protobuf::Message& message) {
  std::vector<std::pair<std::string, int>> path;
  std::vector<PluginField> out;
  CollectPluginFields(message, &path, &out);
  return out;
}

Status ValidateNestedPlugins(const google::protobuf::Message& message) {
  for (const PluginField& field : PluginFieldsOf(message)) {
    Status status;
    if (field.plugin->type().empty()) {
      status = InvalidArgumentError("has no `type` (a registered ", field.kind, " name)");
    } else {
      StatusOr<const RegistryBase*> registry = FindRegistry(field.kind);
      status = registry.ok() ? (*registry)->ValidateOptions(field.plugin->type(), field.plugin->options())
                             : registry.status();
    }
    if (!status.ok()) {
      std::string where;
      for (const auto& [name, index] : field.path) {
        where += (where.empty() ? "" : ".") + name + (index >= 0 ? StrCat("[", index, "]") : "");
      }
      return Status(status.code(), StrCat("`", where, "`: ", status.message()));
    }
  }
  return Status::Ok();
}

std::vector<const RegistryBase*> AllRegistries() {
  std::lock_guard<std::mutex> lock(RegistryListMutex());
  std::vector<const RegistryBase*> list = RegistryList();
  std::sort(list.begin(), list.end(),
            [](const RegistryBase* a, const RegistryBase* b) { return a->kind() < b->kind(); });
  return list;
}

StatusOr<const RegistryBase*> FindRegistry(const std::string& kind) {
  std::vector<std::string> kinds;
  for (const RegistryBase* registry : AllRegistries()) {
    if (registry->kind() == kind) return registry;
    kinds.push_back(registry->kind());
  }
  return NotFoundError("No plugin kind '", kind, "'. Kinds: ", JoinNames(kinds), ".");
}

Registrar::Registrar(const Status& status) {
  if (!status.ok()) {
    // Static initialisation: no logging library yet, plain stderr.
    std::fprintf(stderr, "spnas: fatal plugin registration error: %s\n", status.message().c_str());
    std::abort();
  }
}

}  // namespace spnas
