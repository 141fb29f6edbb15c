// GridSearch: a search algorithm defined outside spnas/, as a user would add one.
// It walks every combination of the search space's CATEGORY values, in order.
#include "examples/custom_search/grid_search.pb.h"
#include "spnas/search/search_algorithm.h"

namespace spnas_examples {

class GridSearch : public spnas::SearchAlgorithm {
 public:
  using Options = GridSearchOptions;

  explicit GridSearch(const Options& options) : options_(options) {}

  static spnas::Status ValidateOptions(const Options& options) {
    if (options.max_sample() < 0) return spnas::InvalidArgumentError("max_sample must be >= 0");
    return spnas::Status::Ok();
  }

  spnas::Status Init(const spnas::SearchContext& context) override {
    if (context.space == nullptr) return spnas::FailedPreconditionError("GridSearch needs a `search_space`");
    grid_size_ = 1;
    for (const spnas::Hyperparameter& h : context.space->hyperparameters()) {
      if (h.type() != spnas::Hyperparameter::CATEGORY) {
        return spnas::InvalidArgumentError("GridSearch takes CATEGORY hyperparameters only; '", h.key(), "' is ",
                                           spnas::Hyperparameter::Type_Name(h.type()));
      }
      grid_size_ *= h.range_size();
    }
    context_ = context;
    return spnas::Status::Ok();
  }

  spnas::StatusOr<std::optional<spnas::Candidate>> Propose(const std::vector<spnas::Trial>& history,
                                                           std::mt19937_64&) override {
    const int next = static_cast<int>(history.size());
    if (next >= Budget()) return std::optional<spnas::Candidate>();
    // Mixed-radix digits of `next` pick one value per hyperparameter.
    spnas::Candidate candidate;
    int rest = next;
    for (const spnas::Hyperparameter& h : context_.space->hyperparameters()) {
      candidate.hyperparameters[h.key()] = h.range(rest % h.range_size());
      rest /= h.range_size();
    }
    candidate.model = context_.base_model;
    SPNAS_RETURN_IF_ERROR(context_.space->Apply(candidate.hyperparameters, &candidate.model));
    return std::optional<spnas::Candidate>(std::move(candidate));
  }

  int Budget() const override {
    return options_.max_sample() > 0 ? std::min(options_.max_sample(), grid_size_) : grid_size_;
  }

 private:
  Options options_;
  spnas::SearchContext context_;
  int grid_size_ = 0;
};

SPNAS_REGISTER_PLUGIN(spnas::SearchAlgorithmRegistry, GridSearch);

}  // namespace spnas_examples
