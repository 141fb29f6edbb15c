#include "spnas/models/searchable.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(SearchableModelRegistry, "searchable_model", SearchableModel);

Status SearchableModel::Unsupported(const std::string& what) const {
  return FailedPreconditionError("model '", type_, "' does not offer ", what, " to the search");
}

StatusOr<std::unique_ptr<SearchableModel>> Searchable(const PluginConfig& model) {
  if (!SearchableModelRegistry().Has(model.type())) {
    std::string names;
    for (const std::string& name : SearchableModelRegistry().Names()) names += (names.empty() ? "" : ", ") + name;
    return FailedPreconditionError("model '", model.type(), "' cannot be searched or reignited: it registers no ",
                                   "SearchableModel (searchable models: ", names.empty() ? "none" : names, ")");
  }
  return SearchableModelRegistry().Create(model.type(), model.options());
}

StatusOr<std::string> SerialCodeOf(const PluginConfig& model) {
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<SearchableModel> searchable, Searchable(model));
  return searchable->SerialCode();
}

StatusOr<PluginConfig> WithSerialCode(const PluginConfig& model, const std::string& code) {
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<SearchableModel> searchable, Searchable(model));
  SPNAS_RETURN_IF_ERROR(searchable->SetSerialCode(code));
  return searchable->Description();
}

StatusOr<PluginConfig> WithParallelCode(const PluginConfig& model, const std::vector<int>& code, int out_channels) {
  SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<SearchableModel> searchable, Searchable(model));
  SPNAS_RETURN_IF_ERROR(searchable->SetParallelCode(code, out_channels));
  return searchable->Description();
}

}  // namespace spnas
