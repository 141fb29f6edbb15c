// Plugin registries: one per plugin kind, each mapping a type name to a factory.
//
// A kind is declared in a header and defined in one .cc:
//   SPNAS_DECLARE_REGISTRY(SearchAlgorithmRegistry, SearchAlgorithm);
//   SPNAS_DEFINE_REGISTRY(SearchAlgorithmRegistry, "search_algorithm", SearchAlgorithm);
// A plugin registers itself in its own .cc (its cc_library needs alwayslink = 1):
//   SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, RandomSearch);
// The plugin class declares `using Options = RandomSearchOptions;` (a protobuf message),
// a constructor taking `const Options&` plus the kind's extra arguments, and optionally
//   `static void SetDefaults(Options*)`: fills the fields left unset, the one source of the
//     plugin's defaults (validation and construction see the options with them; `spnas list`
//     shows them);
//   `static Status ValidateOptions(const Options&)`: run before anything else runs.
#ifndef SPNAS_CORE_REGISTRY_H_
#define SPNAS_CORE_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/message.h>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"

namespace spnas {

struct PluginInfo {
  std::string kind;
  std::string name;
  // Full name of the plugin's options message, e.g. "spnas.RandomSearchOptions".
  std::string options_type;
  // The options with every default the plugin sets (SetDefaults).
  const google::protobuf::Message* default_options = nullptr;
  // Where the plugin registered itself.
  std::string file;
  int line = 0;
};

// The kind-independent part of a registry: names, options types, lookup errors.
class RegistryBase {
 public:
  explicit RegistryBase(std::string kind);
  virtual ~RegistryBase() = default;
  RegistryBase(const RegistryBase&) = delete;
  RegistryBase& operator=(const RegistryBase&) = delete;

  const std::string& kind() const { return kind_; }
  std::vector<std::string> Names() const;  // sorted
  bool Has(const std::string& name) const;
  StatusOr<PluginInfo> Info(const std::string& name) const;

  // Checks that `options` hold the plugin's options type and that the plugin accepts them, and
  // the same for every plugin configured inside them (PluginConfig fields with a plugin_kind).
  Status ValidateOptions(const std::string& name, const google::protobuf::Any& options) const;
  // The same without the nested plugins (the config checker visits those with their locations).
  Status ValidateOwnOptions(const std::string& name, const google::protobuf::Any& options) const;
  // Unpacks `options` into a new message of the plugin's options type, with the plugin's
  // defaults in the fields left unset.
  StatusOr<std::unique_ptr<google::protobuf::Message>> UnpackOptions(const std::string& name,
                                                                     const google::protobuf::Any& options) const;

 protected:
  using Validator = std::function<Status(const google::protobuf::Message&)>;
  using Defaulter = std::function<void(google::protobuf::Message*)>;
  Status AddInfo(const PluginInfo& info, Validator validate, Defaulter set_defaults);
  // Runs the plugin's ValidateOptions on its unpacked options (and validates the nested plugins
  // when `nested`); errors start with "<kind> '<name>': ".
  Status ValidateUnpacked(const std::string& name, const google::protobuf::Message& unpacked, bool nested) const;
  Status UnknownNameError(const std::string& name) const;

  mutable std::mutex mu_;

 private:
  struct Record {
    PluginInfo info;
    Validator validate;
    Defaulter set_defaults;
  };
  std::string kind_;
  std::map<std::string, Record> records_;
};

// Every registry of the process, sorted by kind.
std::vector<const RegistryBase*> AllRegistries();
// The registry of one kind, or NotFound listing the kinds.
StatusOr<const RegistryBase*> FindRegistry(const std::string& kind);

// A plugin configured in a message: a PluginConfig field marked with plugin_kind, reached
// through ordinary sub-messages (not through other plugins' options).
struct PluginField {
  const PluginConfig* plugin = nullptr;  // points into the message
  std::string kind;
  std::vector<std::pair<std::string, int>> path;  // (field, index or -1) from the message down
};
// The plugin fields of `message`, depth first in field order.
std::vector<PluginField> PluginFieldsOf(const google::protobuf::Message& message);

// Validates every plugin configured in `message` and, through their options, in those plugins;
// the error names the field path, e.g. "`neck`: No registered neck named 'FPNN'".
Status ValidateNestedPlugins(const google::protobuf::Message& message);

// Closest candidate to `name` by edit distance, or "" when none is close.
std::string NearestName(const std::string& name, const std::vector<std::string>& candidates);

template <typename T, typename = void>
struct HasSetDefaults : std::false_type {};
template <typename T>
struct HasSetDefaults<T, std::void_t<decltype(T::SetDefaults(std::declval<typename T::Options*>()))>> : std::true_type {
};

template <typename T, typename = void>
struct HasValidateOptions : std::false_type {};
template <typename T>
struct HasValidateOptions<T, std::void_t<decltype(T::ValidateOptions(std::declval<const typename T::Options&>()))>>
    : std::true_type {};

template <typename Base, typename... Args>
class Registry : public RegistryBase {
 public:
  using Factory = std::function<std::unique_ptr<Base>(const google::protobuf::Message&, Args...)>;
  struct Entry {
    PluginInfo info;
    Validator validate;
    Defaulter set_defaults;
    Factory factory;
  };

  explicit Registry(std::string kind) : RegistryBase(std::move(kind)) {}

  template <typename Impl>
  Entry MakeEntry(const std::string& name, const char* file, int line) const {
    static_assert(std::is_base_of_v<Base, Impl>, "plugin must derive from the kind's interface");
    using Options = typename Impl::Options;
    static_assert(std::is_base_of_v<google::protobuf::Message, Options>, "Impl::Options must be a protobuf message");
    Entry entry;
    entry.set_defaults = [](google::protobuf::Message* m) {
      if constexpr (HasSetDefaults<Impl>::value) Impl::SetDefaults(static_cast<Options*>(m));
    };
    static const Options* defaults = [] {
      auto* o = new Options();  // leaked: shown by `spnas list` for the program's life
      if constexpr (HasSetDefaults<Impl>::value) Impl::SetDefaults(o);
      return o;
    }();
    entry.info = {kind(), name, Options::descriptor()->full_name(), defaults, file, line};
    entry.validate = [](const google::protobuf::Message& m) -> Status {
      if constexpr (HasValidateOptions<Impl>::value) {
        return Impl::ValidateOptions(static_cast<const Options&>(m));
      } else {
        return Status::Ok();
      }
    };
    entry.factory = [](const google::protobuf::Message& m, Args... args) -> std::unique_ptr<Base> {
      return std::make_unique<Impl>(static_cast<const Options&>(m), std::forward<Args>(args)...);
    };
    return entry;
  }

  // AlreadyExists, naming both registration sites, when the name is taken.
  Status Register(Entry entry) {
    SPNAS_RETURN_IF_ERROR(AddInfo(entry.info, entry.validate, entry.set_defaults));
    std::lock_guard<std::mutex> lock(mu_);
    factories_[entry.info.name] = std::move(entry.factory);
    return Status::Ok();
  }

  // Validates the options (and those of nested plugins), then builds the plugin. A plugin
  // constructor that throws (e.g. a LibTorch shape check) gives an error, not a crash.
  StatusOr<std::unique_ptr<Base>> Create(const std::string& name, const google::protobuf::Any& options,
                                         Args... args) const {
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> unpacked, UnpackOptions(name, options));
    SPNAS_RETURN_IF_ERROR(ValidateUnpacked(name, *unpacked, /*nested=*/true));
    Factory factory;
    {
      std::lock_guard<std::mutex> lock(mu_);
      factory = factories_.at(name);
    }
    try {
      return factory(*unpacked, std::forward<Args>(args)...);
    } catch (const std::exception& e) {
      return InvalidArgumentError(kind(), " '", name, "' cannot be built: ", ExceptionMessage(e));
    }
  }

 private:
  std::map<std::string, Factory> factories_;
};

// `options` with the plugin's defaults filled in (SetDefaults), for the constructor of a plugin
// class that can also be built directly, not only through its registry.
template <typename Impl>
typename Impl::Options OptionsWithDefaults(typename Impl::Options options) {
  Impl::SetDefaults(&options);
  return options;
}

// Registers at static-initialisation time; a duplicate name aborts the program with both sites.
struct Registrar {
  explicit Registrar(const Status& status);
};

}  // namespace spnas

#define SPNAS_DECLARE_REGISTRY(Accessor, Base, ...) ::spnas::Registry<Base, ##__VA_ARGS__>& Accessor()

// The registry is a leaked function-local static: safe in any static-initialisation order.
// The static bool makes the kind appear in AllRegistries() even before a plugin registers.
#define SPNAS_DEFINE_REGISTRY(Accessor, kind_name, Base, ...)                      \
  ::spnas::Registry<Base, ##__VA_ARGS__>& Accessor() {                             \
    static auto* registry = new ::spnas::Registry<Base, ##__VA_ARGS__>(kind_name); \
    return *registry;                                                              \
  }                                                                                \
  static const bool SPNAS_CONCAT_(spnas_registry_touch_, __COUNTER__) = (Accessor(), true)

#define SPNAS_REGISTER_PLUGIN(Accessor, Class) SPNAS_REGISTER_PLUGIN_AS(Accessor, Class, #Class)

#define SPNAS_REGISTER_PLUGIN_AS(Accessor, Class, name)                         \
  static const ::spnas::Registrar SPNAS_CONCAT_(spnas_registrar_, __COUNTER__)( \
      Accessor().Register(Accessor().template MakeEntry<Class>(name, __FILE__, __LINE__)))

#endif  // SPNAS_CORE_REGISTRY_H_
