// RandomSearch: samples the search space uniformly; the baseline every search is compared to.
// A point whose model is over the resource limits is redrawn before training, as SpNasS
// rejects its candidates.
#include <set>
#include <string>

#include "spnas/core/logging.h"
#include "spnas/search/candidate_cost.h"
#include "spnas/search/search_algorithm.h"

namespace spnas {
namespace {

class RandomSearch : public SearchAlgorithm {
 public:
  using Options = RandomSearchOptions;

  explicit RandomSearch(const Options& options) : options_(options) {
    if (options_.max_redraws() == 0) options_.set_max_redraws(100);
  }

  static void SetDefaults(Options* o) {
    if (!o->has_cost_input_size()) o->set_cost_input_size(224);
  }

  static Status ValidateOptions(const Options& options) {
    if (options.max_sample() <= 0) return InvalidArgumentError("max_sample must be > 0, got ", options.max_sample());
    if (options.max_redraws() < 0) return InvalidArgumentError("max_redraws must be >= 0");
    if (options.cost_input_size() <= 0) {
      return InvalidArgumentError("cost_input_size must be > 0, got ", options.cost_input_size());
    }
    return Status::Ok();
  }

  Status Init(const SearchContext& context) override {
    if (context.space == nullptr) return FailedPreconditionError("RandomSearch needs a `search_space`");
    context_ = context;
    return Status::Ok();
  }

  StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) override {
    if (static_cast<int>(history.size()) >= options_.max_sample()) return std::optional<Candidate>();
    // The history only grows: the points seen so far are kept, and only new trials added.
    if (history.size() < seen_trials_) {
      seen_.clear();
      seen_trials_ = 0;
    }
    for (; seen_trials_ < history.size(); ++seen_trials_) {
      const auto& point = history[seen_trials_].record.hyperparameters();
      seen_.insert(Point(point.begin(), point.end()));
    }
    for (int attempt = 0; attempt <= options_.max_redraws(); ++attempt) {
      Candidate candidate;
      candidate.hyperparameters = context_.space->Sample(rng);
      if (seen_.count(candidate.hyperparameters)) continue;
      candidate.model = context_.base_model;
      SPNAS_RETURN_IF_ERROR(context_.space->Apply(candidate.hyperparameters, &candidate.model));
      const Status within =
          CheckModelLimits(candidate.model, options_.limits(), options_.cost_input_size(), context_.device);
      if (within.code() == StatusCode::kOutOfRange) {
        std::string point;
        for (const auto& [key, value] : candidate.hyperparameters) point += StrCat(" ", key, "=", value);
        LOG(INFO) << "RandomSearch: candidate" << point << " rejected before training: " << within.message();
        seen_.insert(candidate.hyperparameters);
        continue;
      }
      SPNAS_RETURN_IF_ERROR(within);
      return std::optional<Candidate>(std::move(candidate));
    }
    return std::optional<Candidate>();  // the space is exhausted, or every draw was over a limit
  }

  int Budget() const override { return options_.max_sample(); }

 private:
  Options options_;
  SearchContext context_;
  std::set<Point> seen_;
  size_t seen_trials_ = 0;  // trials of the history whose points are in seen_
};

SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, RandomSearch);

}  // namespace
}  // namespace spnas
