// HyperparameterSpace: CATEGORY, INT and FLOAT hyperparameters over dotted keys.
#include <cstdlib>

#include "spnas/core/dotted_keys.h"
#include "spnas/search/search_space.h"

namespace spnas {
namespace {

bool ParseNumber(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

class HyperparameterSpace : public SearchSpace {
 public:
  using Options = HyperparameterSpaceOptions;

  explicit HyperparameterSpace(const Options& options)
      : hyperparameters_(options.hyperparameter().begin(), options.hyperparameter().end()) {}

  static Status ValidateOptions(const Options& options) {
    if (options.hyperparameter_size() == 0) return InvalidArgumentError("no `hyperparameter` given");
    for (const Hyperparameter& h : options.hyperparameter()) {
      if (h.key().empty()) return InvalidArgumentError("a hyperparameter has no `key`");
      if (h.range_size() == 0) return InvalidArgumentError("hyperparameter '", h.key(), "' has an empty `range`");
      if (h.type() == Hyperparameter::CATEGORY) continue;
      double low, high;
      if (h.range_size() != 2 || !ParseNumber(h.range(0), &low) || !ParseNumber(h.range(1), &high) || low > high) {
        return InvalidArgumentError("hyperparameter '", h.key(), "' of type ", Hyperparameter::Type_Name(h.type()),
                                    " needs `range` [low, high] with two numbers, low <= high");
      }
    }
    return Status::Ok();
  }

  const std::vector<Hyperparameter>& hyperparameters() const override { return hyperparameters_; }

  Point Sample(std::mt19937_64& rng) const override {
    Point point;
    for (const Hyperparameter& h : hyperparameters_) {
      if (h.type() == Hyperparameter::CATEGORY) {
        std::uniform_int_distribution<int> pick(0, h.range_size() - 1);
        point[h.key()] = h.range(pick(rng));
        continue;
      }
      const double low = std::strtod(h.range(0).c_str(), nullptr);
      const double high = std::strtod(h.range(1).c_str(), nullptr);
      if (h.type() == Hyperparameter::INT) {
        std::uniform_int_distribution<long long> pick(static_cast<long long>(low), static_cast<long long>(high));
        point[h.key()] = std::to_string(pick(rng));
      } else {
        std::uniform_real_distribution<double> pick(low, high);
        point[h.key()] = std::to_string(pick(rng));
      }
    }
    return point;
  }

  Status Apply(const Point& point, PluginConfig* model) const override {
    for (const auto& [key, value] : point) SPNAS_RETURN_IF_ERROR(SetByKey(model, key, value));
    return Status::Ok();
  }

 private:
  std::vector<Hyperparameter> hyperparameters_;
};

SPNAS_REGISTER_PLUGIN(SearchSpaceRegistry, HyperparameterSpace);

}  // namespace
}  // namespace spnas
