// The search algorithm kind: proposes candidates one at a time from the trials so far.
//
// An algorithm must be a function of (history, rng): SearchPipeStep seeds `rng` per trial and
// replays the finished trials on resume, so a resumed search proposes what the uninterrupted
// one would have.
#ifndef SPNAS_SEARCH_SEARCH_ALGORITHM_H_
#define SPNAS_SEARCH_SEARCH_ALGORITHM_H_

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/record_store.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/search/search_space.h"

namespace spnas {

struct SearchContext {
  const SearchSpace* space = nullptr;     // null when the step has no search_space
  PluginConfig base_model;                // the step's `model`
  std::vector<Trial> inputs;              // records of the step's models_folder
  std::vector<std::string> input_labels;  // per input: the parent label its children record
  // Per input: its record's metrics completed with those of its ancestors that it lacks (a
  // reignition record has the classifier's accuracy; its serial parent, the detector's mAP).
  std::vector<std::map<std::string, double>> input_metrics;
  std::string device = "cpu";  // general.device: where measured costs (latency) are taken
};

struct Candidate {
  PluginConfig model;
  // Index into SearchContext::inputs or into the history (see `parent_is_input`); -1: none.
  int parent = -1;
  bool parent_is_input = false;
  std::vector<Mutation> mutations;
  Point hyperparameters;
  // A callback that pre-trains the candidate before its training (TrainJob::pretrain).
  PluginConfig pretrain;
};

class SearchAlgorithm {
 public:
  virtual ~SearchAlgorithm() = default;
  virtual Status Init(const SearchContext& context) = 0;
  // The next candidate, or nullopt when the search is over. `history` holds every finished trial
  // of this step so far, failed ones included, in the order they finished (id order in one
  // process, and after a resume).
  virtual StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) = 0;
  // The candidates proposed earlier that are still training (on the workers of a distributed
  // run), given before each Propose; always empty in one process. The step itself waits for
  // one of them to finish when a proposal repeats one; an algorithm can use the list to propose
  // something else instead.
  virtual void SetRunning(const std::vector<Candidate>& /*running*/) {}
  // Ids of the trials the step outputs (e.g. the Pareto front). Default: every finished trial.
  virtual std::vector<int> SelectOutputs(const std::vector<Trial>& history) const;
  // Trials the search will run at most (for progress and ETA); -1 when unknown.
  virtual int Budget() const { return -1; }
};

SPNAS_DECLARE_REGISTRY(SearchAlgorithmRegistry, SearchAlgorithm);

}  // namespace spnas

#endif  // SPNAS_SEARCH_SEARCH_ALGORITHM_H_
