#include "spnas/core/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/tokenizer.h>

#include "spnas/core/files.h"
#include "spnas/core/random.h"
#include "spnas/core/registry.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Any;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kBasePathVariable[] = "{local_base_path}";

// Unknown fields are parsed as warnings (so parsing goes on and finds every typo); we report
// them as errors.
class CollectAll : public google::protobuf::io::ErrorCollector {
 public:
  CollectAll(std::string path, const std::string& text, ConfigErrors* errors)
      : path_(std::move(path)), errors_(errors) {
    std::stringstream ss(text);
    for (std::string line; std::getline(ss, line);) lines_.push_back(line);
  }
  void AddError(int line, int column, const std::string& message) override {
    errors_->Add(StrCat(path_, ":", line + 1, ":", column + 1), message);
  }
  void AddWarning(int line, int column, const std::string& message) override {
    // The parser reports an unknown field after its value; point at the field's name instead.
    std::smatch m;
    if (std::regex_search(message, m, std::regex("no field named \"([^\"]+)\"")) && line >= 0 &&
        line < static_cast<int>(lines_.size())) {
      const size_t at = lines_[line].rfind(m[1].str(), column);
      if (at != std::string::npos) column = static_cast<int>(at);
    }
    AddError(line, column, message + " (unknown fields are errors; check the spelling)");
  }

 private:
  std::string path_;
  ConfigErrors* errors_;
  std::vector<std::string> lines_;
};

std::unique_ptr<Message> NewMessageOfType(const std::string& full_name) {
  const Descriptor* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(full_name);
  if (descriptor == nullptr) return nullptr;
  const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  return prototype == nullptr ? nullptr : std::unique_ptr<Message>(prototype->New());
}

std::unique_ptr<Message> UnpackAny(const Any& any) {
  const std::string& url = any.type_url();
  std::unique_ptr<Message> message = NewMessageOfType(url.substr(url.find_last_of('/') + 1));
  if (message != nullptr && !any.UnpackTo(message.get())) return nullptr;
  return message;
}

bool IsAny(const FieldDescriptor* field) {
  return field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         field->message_type()->full_name() == Any::descriptor()->full_name();
}

// Applies `fn` to every string in `message`, including inside packed options.
void RewriteStrings(Message* message, const std::function<void(std::string*)>& fn) {
  const Reflection* reflection = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
          std::string value = reflection->GetRepeatedString(*message, field, i);
          fn(&value);
          reflection->SetRepeatedString(message, field, i, value);
        }
      } else {
        std::string value = reflection->GetString(*message, field);
        fn(&value);
        reflection->SetString(message, field, value);
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = field->is_repeated() ? reflection->FieldSize(*message, field) : 1;
      for (int i = 0; i < n; ++i) {
        Message* sub = field->is_repeated() ? reflection->MutableRepeatedMessage(message, field, i)
                                            : reflection->MutableMessage(message, field);
        if (IsAny(field)) {
          auto* any = static_cast<Any*>(sub);
          std::unique_ptr<Message> inner = UnpackAny(*any);
          if (inner == nullptr) continue;
          RewriteStrings(inner.get(), fn);
          any->PackFrom(*inner);
        } else {
          RewriteStrings(sub, fn);
        }
      }
    }
  }
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos + to.size())) {
    s->replace(pos, from.size(), to);
  }
}

// Merges `override_config` over `base` as a `ref` asks.
PluginConfig MergePlugin(const PluginConfig& base, const PluginConfig& override_config) {
  PluginConfig merged = base;
  merged.clear_ref();
  const bool same_type = override_config.type().empty() || override_config.type() == base.type();
  if (!override_config.type().empty()) merged.set_type(override_config.type());
  if (!override_config.has_options()) {
    if (!same_type) merged.clear_options();
    return merged;
  }
  if (!same_type || !base.has_options() || base.options().type_url() != override_config.options().type_url()) {
    *merged.mutable_options() = override_config.options();
    return merged;
  }
  std::unique_ptr<Message> base_options = UnpackAny(base.options());
  std::unique_ptr<Message> override_options = UnpackAny(override_config.options());
  if (base_options == nullptr || override_options == nullptr) {
    *merged.mutable_options() = override_config.options();
    return merged;
  }
  OverrideFields(*override_options, base_options.get());
  merged.mutable_options()->PackFrom(*base_options);
  return merged;
}

std::vector<const FieldDescriptor*> PluginSlots(const Descriptor* descriptor) {
  std::vector<const FieldDescriptor*> slots;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->options().HasExtension(plugin_kind)) slots.push_back(field);
  }
  return slots;
}

}  // namespace

namespace {

// A mistake in a shared plugin shows in every step that inherits it; once is enough.
void AddOnce(const std::string& where, const std::string& message, std::vector<std::string>* lines) {
  std::string line = where.empty() ? message : where + ": " + message;
  if (std::find(lines->begin(), lines->end(), line) == lines->end()) lines->push_back(std::move(line));
}

}  // namespace

void ConfigErrors::Add(std::string where, std::string message) { AddOnce(where, message, &errors_); }

void ConfigErrors::AddWarning(std::string where, std::string message) { AddOnce(where, message, &warnings_); }

Status ConfigErrors::ToStatus() const {
  if (errors_.empty()) return Status::Ok();
  std::string text = StrCat(errors_.size(), errors_.size() == 1 ? " error" : " errors", " in config:");
  for (const auto& e : errors_) text += "\n  " + e;
  return InvalidArgumentError(text);
}

void OverrideFields(const Message& from, Message* to) {
  const Reflection* from_reflection = from.GetReflection();
  const Reflection* to_reflection = to->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  from_reflection->ListFields(from, &fields);
  for (const FieldDescriptor* field : fields) {
    if (!field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !IsAny(field)) {
      OverrideFields(from_reflection->GetMessage(from, field), to_reflection->MutableMessage(to, field));
      continue;
    }
    // Copy this one field (scalar or whole repeated field) through a scratch message.
    to_reflection->ClearField(to, field);
    std::unique_ptr<Message> scratch(from.New());
    scratch->CopyFrom(from);
    std::vector<const FieldDescriptor*> others;
    scratch->GetReflection()->ListFields(*scratch, &others);
    for (const FieldDescriptor* other : others) {
      if (other != field) scratch->GetReflection()->ClearField(scratch.get(), other);
    }
    to->MergeFrom(*scratch);
  }
}

std::string LoadedConfig::OutputDir(const std::string& step_name) const {
  return (fs::path(base_path()) / "output" / step_name).string();
}

std::string LoadedConfig::InputDir(const StepConfig& step) const {
  if (step.models_folder().empty()) return "";
  for (const StepConfig& other : config_.step()) {
    if (other.name() == step.models_folder()) return OutputDir(other.name());
  }
  return ResolveUserPath(step.models_folder());
}

size_t LoadedConfig::Locate(const FieldPath& field, google::protobuf::TextFormat::ParseLocation* location) const {
  const google::protobuf::TextFormat::ParseInfoTree* tree = locations_.get();
  // Walks the config beside the locations, to know the type packed in each Any passed through.
  const Message* message = &config_;
  std::unique_ptr<Message> unpacked;
  size_t matched = 0;
  while (matched < field.size() && tree != nullptr && message != nullptr) {
    const auto& [name, index] = field[matched];
    const FieldDescriptor* fd = message->GetDescriptor()->FindFieldByName(name);
    if (fd == nullptr) break;
    auto here = tree->GetLocation(fd, index);
    // A list written `[a, b]` has one location, that of its first element.
    for (int j = index - 1; here.line < 0 && j >= 0; --j) here = tree->GetLocation(fd, j);
    if (here.line < 0) break;
    *location = here;
    ++matched;
    if (fd->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) break;
    const Reflection* reflection = message->GetReflection();
    if (fd->is_repeated() && index >= reflection->FieldSize(*message, fd)) break;
    const Message& sub =
        fd->is_repeated() ? reflection->GetRepeatedMessage(*message, fd, index) : reflection->GetMessage(*message, fd);
    tree = tree->GetTreeForNested(fd, index);
    if (IsAny(fd)) {
      unpacked = UnpackAny(static_cast<const Any&>(sub));
      message = unpacked.get();
    } else {
      message = &sub;
    }
  }
  // A field that a step's plugin inherited through `ref` is written where the ref points.
  if (matched < field.size() && field.size() > 2) {
    auto source = ref_sources_.find(FieldPath(field.begin(), field.begin() + 2));
    if (source != ref_sources_.end()) {
      FieldPath inherited = source->second;
      inherited.insert(inherited.end(), field.begin() + 2, field.end());
      google::protobuf::TextFormat::ParseLocation there;
      if (Locate(inherited, &there) == inherited.size()) {
        *location = there;
        return field.size();
      }
    }
  }
  return matched;
}

std::string LoadedConfig::Where(const FieldPath& field) const {
  google::protobuf::TextFormat::ParseLocation location;
  if (Locate(field, &location) == 0) return path_;
  return StrCat(path_, ":", location.line + 1, ":", location.column + 1);
}

std::string LoadedConfig::Fingerprint() const {
  const std::string text = ResolvedText();
  // Without the first line, which names the config's file.
  const uint64_t hash = Fnv1a64(std::string_view(text).substr(text.find('\n') + 1));
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::string LoadedConfig::ResolvedText() const {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetExpandAny(true);
  printer.PrintToString(config_, &text);
  return "# Resolved config of " + path_ + " (refs merged, paths substituted).\n" + text;
}

StatusOr<LoadedConfig> ParseConfig(const std::string& text, const std::string& path, const ConfigLoadOptions& options,
                                   ConfigErrors* errors) {
  LoadedConfig loaded;
  loaded.path_ = path;
  loaded.locations_ = std::make_shared<google::protobuf::TextFormat::ParseInfoTree>();
  const size_t errors_before = errors->size();

  CollectAll collector(path, text, errors);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.AllowUnknownField(true);  // reported as errors by CollectAll, after parsing everything
  parser.WriteLocationsTo(loaded.locations_.get());
  PipelineConfig& config = loaded.config_;
  if (!parser.ParseFromString(text, &config) || errors->size() > errors_before) {
    return InvalidArgumentError("config '", path, "' does not parse");
  }

  // Base path: flag, then config, then runs/<config name>.
  GeneralConfig* general = config.mutable_general();
  if (!options.local_base_path.empty()) {
    general->set_local_base_path(options.local_base_path);
  } else if (general->local_base_path().empty()) {
    general->set_local_base_path("runs/" + fs::path(path).stem().string());
  }
  general->set_local_base_path(ResolveUserPath(general->local_base_path()));
  if (!options.device.empty()) general->set_device(options.device);
  if (general->device().empty()) general->set_device("cpu");

  // Resolve refs in order: a step may inherit from shared plugins and from earlier steps.
  std::map<std::string, PluginConfig> named;  // "shared.x" / "step.slot" -> resolved plugin
  std::map<std::string, FieldPath> named_at;  // where each of them is written
  for (int i = 0; i < config.shared_size(); ++i) {
    const SharedPlugin& shared = config.shared(i);
    const std::string where = loaded.Where({{"shared", i}, {"name", -1}});
    if (shared.name().empty()) errors->Add(where, "shared plugin has no name");
    if (!shared.plugin().ref().empty()) {
      errors->Add(where, "a shared plugin cannot use `ref`; define it in full");
    }
    named["shared." + shared.name()] = shared.plugin();
    named_at["shared." + shared.name()] = {{"shared", i}, {"plugin", -1}};
  }
  for (int s = 0; s < config.step_size(); ++s) {
    StepConfig* step = config.mutable_step(s);
    const Reflection* reflection = step->GetReflection();
    for (const FieldDescriptor* slot : PluginSlots(StepConfig::descriptor())) {
      const int n =
          slot->is_repeated() ? reflection->FieldSize(*step, slot) : (reflection->HasField(*step, slot) ? 1 : 0);
      for (int i = 0; i < n; ++i) {
        auto* plugin =
            static_cast<PluginConfig*>(slot->is_repeated() ? reflection->MutableRepeatedMessage(step, slot, i)
                                                           : reflection->MutableMessage(step, slot));
        if (!plugin->ref().empty()) {
          auto it = named.find(plugin->ref());
          if (it == named.end()) {
            std::vector<std::string> names;
            for (const auto& [name, unused] : named) names.push_back(name);
            const std::string nearest = NearestName(plugin->ref(), names);
            errors->Add(loaded.Where({{"step", s}, {slot->name(), slot->is_repeated() ? i : -1}, {"ref", -1}}),
                        StrCat("ref '", plugin->ref(), "' names no shared plugin and no plugin of an ",
                               "earlier step (use \"shared.<name>\" or \"<step>.<field>\")",
                               nearest.empty() ? "" : StrCat("; did you mean '", nearest, "'?")));
          } else {
            *plugin = MergePlugin(it->second, *plugin);
            loaded.ref_sources_[{{"step", s}, {slot->name(), slot->is_repeated() ? i : -1}}] = named_at[it->first];
          }
        }
        if (!slot->is_repeated()) {
          named[step->name() + "." + slot->name()] = *plugin;
          named_at[step->name() + "." + slot->name()] = {{"step", s}, {slot->name(), -1}};
        }
      }
    }
  }

  const std::string base = general->local_base_path();
  RewriteStrings(&config, [&](std::string* s) { ReplaceAll(s, kBasePathVariable, base); });
  for (StepConfig& step : *config.mutable_step()) {
    step.set_pretrained_model_file(ResolveUserPath(step.pretrained_model_file()));
  }
  return loaded;
}

StatusOr<LoadedConfig> LoadConfigFile(const std::string& path, const ConfigLoadOptions& options, ConfigErrors* errors) {
  const std::string resolved = ResolveUserPath(path);
  StatusOr<std::string> text = ReadFile(resolved);
  if (!text.ok()) {
    errors->Add(resolved, "cannot read the config file");
    return text.status();
  }
  return ParseConfig(*text, resolved, options, errors);
}

}  // namespace spnas

namespace spnas {
namespace {

void CheckPluginsIn(const google::protobuf::Message& message, const LoadedConfig& config, const FieldPath& path,
                    ConfigErrors* errors);

void CheckPlugin(const PluginConfig& plugin, const std::string& kind, const std::string& field_name,
                 const LoadedConfig& config, const FieldPath& path, ConfigErrors* errors) {
  const std::string where = config.Where(path);
  if (plugin.type().empty()) {
    errors->Add(where, StrCat("`", field_name, "` has no `type` (a registered ", kind, " name)"));
    return;
  }
  StatusOr<const RegistryBase*> registry = FindRegistry(kind);
  if (!registry.ok()) {
    errors->Add(where, registry.status().message());
    return;
  }
  StatusOr<PluginInfo> info = (*registry)->Info(plugin.type());
  if (!info.ok()) {
    errors->Add(where, StrCat("`", field_name, "`: ", info.status().message()));
    return;
  }
  FieldPath options_path = path;
  options_path.emplace_back("options", -1);
  Status valid = (*registry)->ValidateOwnOptions(plugin.type(), plugin.options());
  if (!valid.ok()) {
    errors->Add(config.Where(options_path), valid.message());
    return;
  }
  auto unpacked = (*registry)->UnpackOptions(plugin.type(), plugin.options());
  if (unpacked.ok()) CheckPluginsIn(**unpacked, config, options_path, errors);
}

void CheckPluginsIn(const google::protobuf::Message& message, const LoadedConfig& config, const FieldPath& path,
                    ConfigErrors* errors) {
  for (const PluginField& field : PluginFieldsOf(message)) {
    FieldPath plugin_path = path;
    plugin_path.insert(plugin_path.end(), field.path.begin(), field.path.end());
    CheckPlugin(*field.plugin, field.kind, field.path.back().first, config, plugin_path, errors);
  }
}

std::string Dotted(const FieldPath& path) {
  std::string dotted;
  for (const auto& [name, index] : path) {
    dotted += (dotted.empty() ? "" : ".") + name + (index >= 0 ? StrCat("[", index, "]") : "");
  }
  return dotted;
}

// Every float and double of the config, packed plugin options included: nan passes the plugins'
// range checks (it compares false) and inf passes lower bounds, and either would only show up
// as a diverged training. `reported` holds the written values already reported, so that one
// inherited through `ref` by several steps is reported once.
void CheckFinite(const Message& message, const LoadedConfig& config, FieldPath* path, std::set<std::string>* reported,
                 ConfigErrors* errors) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const FieldDescriptor::CppType type = field->cpp_type();
    if (type != FieldDescriptor::CPPTYPE_FLOAT && type != FieldDescriptor::CPPTYPE_DOUBLE &&
        type != FieldDescriptor::CPPTYPE_MESSAGE) {
      continue;
    }
    const bool repeated = field->is_repeated();
    const int n = repeated ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < n; ++i) {
      path->emplace_back(field->name(), repeated ? i : -1);
      if (type == FieldDescriptor::CPPTYPE_FLOAT || type == FieldDescriptor::CPPTYPE_DOUBLE) {
        const double value =
            type == FieldDescriptor::CPPTYPE_FLOAT
                ? (repeated ? reflection->GetRepeatedFloat(message, field, i) : reflection->GetFloat(message, field))
                : (repeated ? reflection->GetRepeatedDouble(message, field, i) : reflection->GetDouble(message, field));
        if (!std::isfinite(value)) {
          const std::string where = config.Where(*path);
          if (reported->insert(StrCat(where, " ", field->name(), "[", i, "]")).second) {
            errors->Add(where, StrCat("`", Dotted(*path), "` must be a finite number, got ", value));
          }
        }
      } else {
        const Message& sub =
            repeated ? reflection->GetRepeatedMessage(message, field, i) : reflection->GetMessage(message, field);
        if (!IsAny(field)) {
          CheckFinite(sub, config, path, reported, errors);
        } else if (std::unique_ptr<Message> inner = UnpackAny(static_cast<const Any&>(sub))) {
          CheckFinite(*inner, config, path, reported, errors);
        }
      }
      path->pop_back();
    }
  }
}

bool SamePath(const std::string& a, const std::string& b) {
  return fs::path(a).lexically_normal() == fs::path(b).lexically_normal() ||
         fs::path(a + "/").lexically_normal() == fs::path(b + "/").lexically_normal();
}

// The step of this pipeline whose output folder `path` is (or whose output contains it), or -1.
int ProducingStep(const LoadedConfig& config, const std::string& path) {
  const auto& steps = config.config().step();
  for (int i = 0; i < steps.size(); ++i) {
    const std::string out = config.OutputDir(steps[i].name());
    if (SamePath(path, out) || SamePath(fs::path(path).parent_path().string(), out)) return i;
  }
  return -1;
}

// Checks that the input `path` of step `s` exists or is made by an earlier step.
void CheckInput(const LoadedConfig& config, int s, const std::string& path, const FieldPath& field,
                const std::string& what, bool must_exist, ConfigErrors* errors) {
  const auto& steps = config.config().step();
  const std::string& name = steps[s].name();
  const int producer = ProducingStep(config, path);
  if (producer >= 0 && producer < s) return;
  if (producer >= s) {
    errors->Add(
        config.Where(field),
        StrCat(what, " '", path, "' of step '", name, "' is written by step '", steps[producer].name(), "', which ",
               producer == s ? "is this step" : "runs after it", "; reorder the steps or name an earlier step"));
    return;
  }
  if (fs::exists(path)) return;
  std::string hint;
  const fs::path p = fs::path(path).lexically_normal();
  const fs::path output_root = (fs::path(config.base_path()) / "output").lexically_normal();
  if (SamePath(p.parent_path().string(), output_root.string()) ||
      SamePath(p.parent_path().parent_path().string(), output_root.string())) {
    const std::string producer_name = SamePath(p.parent_path().string(), output_root.string())
                                          ? p.filename().string()
                                          : p.parent_path().filename().string();
    hint = StrCat("; it is the output of a step named '", producer_name,
                  "', which is not in this pipeline: run that step first with the same "
                  "local_base_path, or add it before '",
                  name, "'");
  }
  const std::string message = StrCat(what, " '", path, "' of step '", name, "' does not exist", hint);
  if (must_exist) {
    errors->Add(config.Where(field), message);
  } else {
    errors->AddWarning(config.Where(field), message);
  }
}

}  // namespace

void CheckConfig(const LoadedConfig& config, ConfigErrors* errors, bool inputs_must_exist) {
  const PipelineConfig& pipeline = config.config();
  const GeneralConfig& general = pipeline.general();
  if (general.threads() < 0) {
    errors->Add(config.Where({{"general", -1}, {"threads", -1}}),
                StrCat("general.threads must be >= 0 (0 = all cores), got ", general.threads()));
  }
  // The form only: whether that GPU exists is checked where the run starts (ResolveDevice).
  static const std::regex kDevice("cpu|cuda(:[0-9]{1,4})?");
  if (!std::regex_match(general.device(), kDevice)) {
    errors->Add(config.Where({{"general", -1}, {"device", -1}}),
                StrCat("general.device must be \"cpu\", \"cuda\" or \"cuda:N\", got \"", general.device(), "\""));
  }
  FieldPath path;
  std::set<std::string> reported;
  CheckFinite(pipeline, config, &path, &reported, errors);
  if (pipeline.step_size() == 0) errors->Add(config.path(), "the pipeline has no `step`");
  if (!general.final_step().empty()) {
    bool found = false;
    std::vector<std::string> names;
    for (const StepConfig& step : pipeline.step()) {
      found |= step.name() == general.final_step();
      names.push_back(step.name());
    }
    if (!found) {
      const std::string nearest = NearestName(general.final_step(), names);
      errors->Add(config.Where({{"general", -1}, {"final_step", -1}}),
                  StrCat("general.final_step '", general.final_step(), "' names no step",
                         nearest.empty() ? "" : StrCat("; did you mean '", nearest, "'?")));
    }
  }

  std::set<std::string> names;
  for (int s = 0; s < pipeline.step_size(); ++s) {
    const StepConfig& step = pipeline.step(s);
    const FieldPath step_path = {{"step", s}};
    if (!std::regex_match(step.name(), std::regex("[A-Za-z0-9_.-]+"))) {
      errors->Add(config.Where({{"step", s}, {"name", -1}}),
                  StrCat("step name '", step.name(), "' must be non-empty and use only letters, ",
                         "digits, '_', '-' and '.' (it names the output folder)"));
    } else if (!names.insert(step.name()).second) {
      errors->Add(config.Where({{"step", s}, {"name", -1}}), StrCat("step name '", step.name(), "' is used twice"));
    }
    if (!step.has_pipe_step()) {
      errors->Add(config.Where(step_path), StrCat("step '", step.name(), "' has no `pipe_step`"));
    }
    CheckPluginsIn(step, config, step_path, errors);
    if (!step.models_folder().empty()) {
      CheckInput(config, s, config.InputDir(step), {{"step", s}, {"models_folder", -1}}, "models_folder",
                 inputs_must_exist, errors);
    }
    if (!step.pretrained_model_file().empty()) {
      CheckInput(config, s, step.pretrained_model_file(), {{"step", s}, {"pretrained_model_file", -1}},
                 "pretrained_model_file", inputs_must_exist, errors);
    }
  }
}

}  // namespace spnas
