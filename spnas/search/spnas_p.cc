// SpNasP: parallel-level search (spnas.md §6). For a backbone from the input records
// (the reignition step), codes [K_1..K_L] are sampled by ParallelSampler: a sub-network is added
// at a stage with probability ∝ 1 / its FLOPs, until the limits or a random stop. The plain FPN
// ([0, ..., 0]) of the backbones is evaluated first, as the baseline (at most half the budget).

#include <set>

#include "spnas/core/logging.h"
#include "spnas/models/inheritance.h"
#include "spnas/models/searchable.h"
#include "spnas/search/candidate_cost.h"
#include "spnas/search/parallel_sampling.h"
#include "spnas/search/pareto.h"
#include "spnas/search/search_algorithm.h"
#include "spnas/search/serial_mutation.h"

namespace spnas {
namespace {

constexpr char kNeckKey[] = "network.neck.code";
constexpr char kCodeKey[] = "network.backbone.code";

std::string CodeText(const std::vector<int>& code) {
  std::string s = "[";
  for (size_t i = 0; i < code.size(); ++i) s += (i ? ", " : "") + std::to_string(code[i]);
  return s + "]";
}

class SpNasP : public ParetoSearchAlgorithm {
 public:
  using Options = SpNasPOptions;
  explicit SpNasP(const Options& options) : options_(options) {}

  static void SetDefaults(Options* o) {
    if (o->objective_keys().empty()) {
      o->add_objective_keys("mAP");
      o->add_objective_keys("params");
    }
    if (!o->has_max_sample()) o->set_max_sample(10);
    if (!o->has_stop_probability()) o->set_stop_probability(0.25f);
    if (!o->has_max_per_stage()) o->set_max_per_stage(3);
    if (!o->has_max_redraws()) o->set_max_redraws(200);
    if (!o->has_cost_input_size()) o->set_cost_input_size(224);
  }

  static Status ValidateOptions(const Options& o) {
    if (o.max_sample() <= 0) return InvalidArgumentError("max_sample must be > 0");
    if (o.stop_probability() < 0 || o.stop_probability() > 1) {
      return InvalidArgumentError("stop_probability must be in [0, 1]");
    }
    if (o.max_per_stage() <= 0) return InvalidArgumentError("max_per_stage must be > 0");
    return Objectives(o.objective_keys()).status();
  }

  Status Init(const SearchContext& context) override {
    SPNAS_ASSIGN_OR_RETURN(objectives_, Objectives(options_.objective_keys()));
    max_sample_ = options_.max_sample();
    if (context.inputs.empty()) {
      return FailedPreconditionError("SpNasP needs backbones: set the step's models_folder (e.g. the reignition step)");
    }
    context_ = context;
    if (context.space != nullptr) {
      for (const Hyperparameter& h : context.space->hyperparameters()) {
        if (h.key() == kNeckKey) fixed_codes_.assign(h.range().begin(), h.range().end());
      }
    }
    // Per backbone: the FLOPs and parameters one sub-network adds at each stage.
    for (const Trial& input : context.inputs) {
      SPNAS_ASSIGN_OR_RETURN(std::string serial, SerialCodeOf(input.desc));
      const int stages = static_cast<int>(SplitStages(serial).size());
      Backbone b;
      b.serial = serial;
      SPNAS_ASSIGN_OR_RETURN(const PluginConfig plain, WithNeck(input.desc, std::vector<int>(stages, 0)));
      SPNAS_ASSIGN_OR_RETURN(auto base, CandidateCosts(plain, options_.cost_input_size(), false));
      b.base = base;
      for (int l = 0; l < stages; ++l) {
        std::vector<int> one(stages, 0);
        one[l] = 1;
        SPNAS_ASSIGN_OR_RETURN(const PluginConfig with_one, WithNeck(input.desc, one));
        SPNAS_ASSIGN_OR_RETURN(auto with, CandidateCosts(with_one, options_.cost_input_size(), false));
        b.subnet_flops.push_back(with.at("flops") - base.at("flops"));
        b.subnet_params.push_back(with.at("params") - base.at("params"));
      }
      std::string flops;
      for (double f : b.subnet_flops) flops += StrCat(" ", static_cast<int64_t>(f / 1e6), "M");
      LOG(INFO) << "SpNasP: backbone " << serial << ": one sub-network adds FLOPs per stage:" << flops;
      backbones_.push_back(b);
    }
    return Status::Ok();
  }

  StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) override {
    if (static_cast<int>(history.size()) >= options_.max_sample()) return std::optional<Candidate>();
    std::set<std::pair<std::string, std::string>> seen;  // (backbone code, neck code)
    for (const Trial& t : history) {
      const auto& h = t.record.hyperparameters();
      if (h.count(kCodeKey) && h.count(kNeckKey)) seen.insert({h.at(kCodeKey), h.at(kNeckKey)});
    }
    // The plain FPN of the backbones (at most half of the budget), then the configured codes,
    // then samples.
    for (size_t i = 0; i < backbones_.size() && 2 * i < static_cast<size_t>(options_.max_sample()); ++i) {
      const std::vector<int> zeros(backbones_[i].subnet_flops.size(), 0);
      if (!seen.count({backbones_[i].serial, CodeText(zeros)})) return Make(static_cast<int>(i), zeros);
    }
    for (const std::string& text : fixed_codes_) {
      std::vector<int> code;
      for (char c : text) {
        if (c >= '0' && c <= '9') code.push_back(c - '0');
      }
      for (size_t i = 0; i < backbones_.size(); ++i) {
        if (code.size() == backbones_[i].subnet_flops.size() && !seen.count({backbones_[i].serial, CodeText(code)})) {
          return Make(static_cast<int>(i), code);
        }
      }
    }
    for (int attempt = 0; attempt < options_.max_redraws(); ++attempt) {
      const int i = std::uniform_int_distribution<int>(0, static_cast<int>(backbones_.size()) - 1)(rng);
      const Backbone& b = backbones_[i];
      ParallelSampler sampler;
      sampler.subnet_flops = b.subnet_flops;
      sampler.max_per_stage = options_.max_per_stage();
      sampler.stop_probability = options_.stop_probability();
      sampler.within_limits = [&](const std::vector<int>& code) {
        return CheckLimits(Costs(b, code), options_.limits()).ok();
      };
      const std::vector<int> code = sampler.Sample({}, rng);
      if (seen.count({b.serial, CodeText(code)})) continue;
      return Make(i, code);
    }
    LOG(WARNING) << "SpNasP: no new code within " << options_.max_redraws() << " draws; the search ends";
    return std::optional<Candidate>();
  }

 private:
  struct Backbone {
    std::string serial;
    std::map<std::string, double> base;
    std::vector<double> subnet_flops, subnet_params;
  };

  // Costs of a code, from the per-stage increments (sub-networks add up).
  static std::map<std::string, double> Costs(const Backbone& b, const std::vector<int>& code) {
    std::map<std::string, double> c = b.base;
    for (size_t l = 0; l < code.size(); ++l) {
      c["flops"] += code[l] * b.subnet_flops[l];
      c["params"] += code[l] * b.subnet_params[l];
    }
    return c;
  }

  // The input record's model with the parallel code.
  StatusOr<PluginConfig> WithNeck(const PluginConfig& model, const std::vector<int>& code) const {
    return WithParallelCode(model, code, options_.out_channels());
  }

  StatusOr<std::optional<Candidate>> Make(int input, const std::vector<int>& code) const {
    Candidate c;
    SPNAS_ASSIGN_OR_RETURN(c.model, WithNeck(context_.inputs[input].desc, code));
    c.parent = input;
    c.parent_is_input = true;
    c.mutations = {ParallelMutation(code)};
    c.hyperparameters[kCodeKey] = backbones_[input].serial;
    c.hyperparameters[kNeckKey] = CodeText(code);
    return std::optional<Candidate>(c);
  }

  Options options_;
  SearchContext context_;
  std::vector<std::string> fixed_codes_;
  std::vector<Backbone> backbones_;
};

SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, SpNasP);

}  // namespace
}  // namespace spnas
