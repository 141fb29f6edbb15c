#include "spnas/search/search_algorithm.h"
#include "spnas/search/search_space.h"

namespace spnas {

SPNAS_DEFINE_REGISTRY(SearchAlgorithmRegistry, "search_algorithm", SearchAlgorithm);
SPNAS_DEFINE_REGISTRY(SearchSpaceRegistry, "search_space", SearchSpace);

std::vector<int> SearchAlgorithm::SelectOutputs(const std::vector<Trial>& history) const {
  std::vector<int> ids;
  for (const Trial& t : history) {
    if (t.record.status() == FINISHED) ids.push_back(t.record.id());
  }
  return ids;
}

}  // namespace spnas
