// Reading and writing a model description (a PluginConfig tree) by dotted key:
// "network.backbone.code" is field `code` of the options of the `backbone` plugin of the
// model; the leading "network." is optional.
#ifndef SPNAS_CORE_DOTTED_KEYS_H_
#define SPNAS_CORE_DOTTED_KEYS_H_

#include <string>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/status.h"

namespace spnas {

// Sets the field at `key` from its text-format value ("111-21", "3", "[0, 1, 2]").
// `model_kind` is the plugin kind of the root ("model").
Status SetByKey(PluginConfig* model, const std::string& key, const std::string& value,
                const std::string& model_kind = "model");

// The field at `key` in text format (strings unquoted, repeated fields as "[a, b]").
StatusOr<std::string> GetByKey(const PluginConfig& model, const std::string& key,
                               const std::string& model_kind = "model");

}  // namespace spnas

#endif  // SPNAS_CORE_DOTTED_KEYS_H_
