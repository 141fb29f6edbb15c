// The search space kind: hyperparameters over dotted keys of the model description.
#ifndef SPNAS_SEARCH_SEARCH_SPACE_H_
#define SPNAS_SEARCH_SEARCH_SPACE_H_

#include <map>
#include <random>
#include <string>
#include <vector>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/search/search_options.pb.h"

namespace spnas {

// Hyperparameter values by dotted key, in text format.
using Point = std::map<std::string, std::string>;

class SearchSpace {
 public:
  virtual ~SearchSpace() = default;
  virtual const std::vector<Hyperparameter>& hyperparameters() const = 0;
  // A point drawn uniformly: a CATEGORY value, an INT or FLOAT in [low, high].
  virtual Point Sample(std::mt19937_64& rng) const = 0;
  // Writes a point into a model description.
  virtual Status Apply(const Point& point, PluginConfig* model) const = 0;
};

SPNAS_DECLARE_REGISTRY(SearchSpaceRegistry, SearchSpace);

}  // namespace spnas

#endif  // SPNAS_SEARCH_SEARCH_SPACE_H_
