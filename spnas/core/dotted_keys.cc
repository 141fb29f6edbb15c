#include "spnas/core/dotted_keys.h"

#include <sstream>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include "spnas/core/registry.h"

namespace spnas {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::vector<std::string> SplitKey(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  if (!parts.empty() && parts[0] == "network") parts.erase(parts.begin());
  return parts;
}

std::string FieldNames(const google::protobuf::Descriptor* d) {
  std::string names;
  for (int i = 0; i < d->field_count(); ++i) names += (i ? ", " : "") + d->field(i)->name();
  return names;
}

// Visits the field named by parts[i..] below `message`; `fn` gets the innermost message and
// field. Options of plugins are unpacked, visited and (when `write`) packed back.
Status Visit(Message* message, const std::vector<std::string>& parts, size_t i, const std::string& key, bool write,
             const std::function<Status(Message*, const FieldDescriptor*)>& fn);

Status VisitPlugin(PluginConfig* plugin, const std::string& kind, const std::vector<std::string>& parts, size_t i,
                   const std::string& key, bool write,
                   const std::function<Status(Message*, const FieldDescriptor*)>& fn) {
  SPNAS_ASSIGN_OR_RETURN(const RegistryBase* registry, FindRegistry(kind));
  auto options = registry->UnpackOptions(plugin->type(), plugin->options());
  if (!options.ok()) {
    return InvalidArgumentError("key '", key, "': ", options.status().message());
  }
  SPNAS_RETURN_IF_ERROR(Visit(options->get(), parts, i, key, write, fn));
  if (write) plugin->mutable_options()->PackFrom(**options);
  return Status::Ok();
}

Status Visit(Message* message, const std::vector<std::string>& parts, size_t i, const std::string& key, bool write,
             const std::function<Status(Message*, const FieldDescriptor*)>& fn) {
  const auto* descriptor = message->GetDescriptor();
  const FieldDescriptor* field = descriptor->FindFieldByName(parts[i]);
  if (field == nullptr) {
    return InvalidArgumentError("key '", key, "': ", descriptor->full_name(), " has no field '", parts[i],
                                "' (fields: ", FieldNames(descriptor), ")");
  }
  if (i + 1 == parts.size()) return fn(message, field);
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
    return InvalidArgumentError("key '", key, "': field '", parts[i], "' of ", descriptor->full_name(),
                                " is not a message, so it has no field '", parts[i + 1], "'");
  }
  Message* sub = message->GetReflection()->MutableMessage(message, field);
  if (field->options().HasExtension(plugin_kind) && i + 2 == parts.size() && parts[i + 1] == "type") {
    // "<plugin>.type" is the plugin's type name.
    return fn(sub, sub->GetDescriptor()->FindFieldByName("type"));
  }
  if (field->options().HasExtension(plugin_kind)) {
    return VisitPlugin(static_cast<PluginConfig*>(sub), field->options().GetExtension(plugin_kind), parts, i + 1, key,
                       write, fn);
  }
  return Visit(sub, parts, i + 1, key, write, fn);
}

}  // namespace

Status SetByKey(PluginConfig* model, const std::string& key, const std::string& value, const std::string& model_kind) {
  const std::vector<std::string> parts = SplitKey(key);
  if (parts.empty()) return InvalidArgumentError("empty hyperparameter key");
  return VisitPlugin(
      model, model_kind, parts, 0, key, true, [&](Message* message, const FieldDescriptor* field) -> Status {
        std::string text_value = value;
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && (value.empty() || value.front() != '"')) {
          std::string escaped;
          for (char c : value) escaped += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
          text_value = "\"" + escaped + "\"";
        }
        // Parse "field: value" into a scratch message, then move that field over.
        std::unique_ptr<Message> scratch(message->New());
        if (!google::protobuf::TextFormat::ParseFromString(field->name() + ": " + text_value, scratch.get())) {
          return InvalidArgumentError("key '", key, "': '", value, "' is not a valid value for field '", field->name(),
                                      "' of type ", field->type_name());
        }
        message->GetReflection()->ClearField(message, field);
        message->MergeFrom(*scratch);
        return Status::Ok();
      });
}

StatusOr<std::string> GetByKey(const PluginConfig& model, const std::string& key, const std::string& model_kind) {
  const std::vector<std::string> parts = SplitKey(key);
  if (parts.empty()) return InvalidArgumentError("empty hyperparameter key");
  PluginConfig copy = model;
  std::string result;
  SPNAS_RETURN_IF_ERROR(VisitPlugin(
      &copy, model_kind, parts, 0, key, false, [&](Message* message, const FieldDescriptor* field) -> Status {
        const auto* reflection = message->GetReflection();
        if (!field->is_repeated()) {
          if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
            result = reflection->GetString(*message, field);
          } else {
            google::protobuf::TextFormat::PrintFieldValueToString(*message, field, -1, &result);
          }
          return Status::Ok();
        }
        result = "[";
        for (int j = 0; j < reflection->FieldSize(*message, field); ++j) {
          std::string item;
          google::protobuf::TextFormat::PrintFieldValueToString(*message, field, j, &item);
          result += (j ? ", " : "") + item;
        }
        result += "]";
        return Status::Ok();
      }));
  return result;
}

}  // namespace spnas
