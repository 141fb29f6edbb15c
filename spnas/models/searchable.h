// What the searches and reignition read and change in a model description, as an interface a
// model plugin offers: SpNasS edits the backbone's serial code, SpNasP the parallel code, and
// reignition pre-trains the backbone in a classifier. A plugin registers its implementation
// under its own model type name; a model without one, or without a part, fails clearly.
#ifndef SPNAS_MODELS_SEARCHABLE_H_
#define SPNAS_MODELS_SEARCHABLE_H_

#include <memory>
#include <string>
#include <vector>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"

namespace spnas {

class SearchableModel {
 public:
  virtual ~SearchableModel() = default;

  // The description with the edits made so far.
  virtual PluginConfig Description() const = 0;

  // The backbone's serial code (docs/sp_nas.md, serial codes), e.g. "11-21-21-21".
  virtual StatusOr<std::string> SerialCode() const { return Unsupported("a serial backbone code"); }
  virtual Status SetSerialCode(const std::string& code) { return Unsupported("a serial backbone code"); }
  // Extra passes per stage of the parallel structure; out_channels > 0 also sets the
  // neck's width, 0 keeps it.
  virtual Status SetParallelCode(const std::vector<int>& code, int out_channels) {
    return Unsupported("a parallel structure");
  }
  // The backbone, for a classifier that pre-trains it (reignition).
  virtual StatusOr<PluginConfig> Backbone() const { return Unsupported("a backbone to reignite"); }
  // How often the backbone of this lineage was reignited.
  virtual StatusOr<int> Reignitions() const { return Unsupported("a reignition count"); }
  virtual Status SetReignitions(int count) { return Unsupported("a reignition count"); }

 protected:
  explicit SearchableModel(std::string type) : type_(std::move(type)) {}
  Status Unsupported(const std::string& what) const;

 private:
  std::string type_;
};

// Registered under the model's type name, with the model's options type.
SPNAS_DECLARE_REGISTRY(SearchableModelRegistry, SearchableModel);

// The searchable view of `model`, or an error saying that its type offers none.
StatusOr<std::unique_ptr<SearchableModel>> Searchable(const PluginConfig& model);

// Shorthands for one read or edit of a description.
StatusOr<std::string> SerialCodeOf(const PluginConfig& model);
StatusOr<PluginConfig> WithSerialCode(const PluginConfig& model, const std::string& code);
StatusOr<PluginConfig> WithParallelCode(const PluginConfig& model, const std::vector<int>& code, int out_channels);

}  // namespace spnas

#endif  // SPNAS_MODELS_SEARCHABLE_H_
