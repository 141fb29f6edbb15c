// RandomSearch: samples the search space uniformly; the baseline every search is compared to.
#include <set>

#include "spnas/search/search_algorithm.h"

namespace spnas {
namespace {

class RandomSearch : public SearchAlgorithm {
 public:
  using Options = RandomSearchOptions;

  explicit RandomSearch(const Options& options) : options_(options) {
    if (options_.max_redraws() == 0) options_.set_max_redraws(100);
  }

  static Status ValidateOptions(const Options& options) {
    if (options.max_sample() <= 0) return InvalidArgumentError("max_sample must be > 0, got ", options.max_sample());
    if (options.max_redraws() < 0) return InvalidArgumentError("max_redraws must be >= 0");
    return Status::Ok();
  }

  Status Init(const SearchContext& context) override {
    if (context.space == nullptr) return FailedPreconditionError("RandomSearch needs a `search_space`");
    context_ = context;
    return Status::Ok();
  }

  StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) override {
    if (static_cast<int>(history.size()) >= options_.max_sample()) return std::optional<Candidate>();
    std::set<std::map<std::string, std::string>> seen;
    for (const Trial& t : history) {
      seen.insert(Point(t.record.hyperparameters().begin(), t.record.hyperparameters().end()));
    }
    for (int attempt = 0; attempt <= options_.max_redraws(); ++attempt) {
      Candidate candidate;
      candidate.hyperparameters = context_.space->Sample(rng);
      if (seen.count(candidate.hyperparameters)) continue;
      candidate.model = context_.base_model;
      SPNAS_RETURN_IF_ERROR(context_.space->Apply(candidate.hyperparameters, &candidate.model));
      return std::optional<Candidate>(std::move(candidate));
    }
    return std::optional<Candidate>();  // the space is exhausted
  }

  int Budget() const override { return options_.max_sample(); }

 private:
  Options options_;
  SearchContext context_;
};

SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, RandomSearch);

}  // namespace
}  // namespace spnas
