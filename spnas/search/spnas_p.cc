// SpNasP: parallel-level search (docs/sp_nas.md, parallel search). Its parents are the best `max_optimal` backbones
// of the input records (the reignition step), ranked by the Pareto front of their lineage's
// metrics. Codes [K_1..K_L] are then evaluated in this order: the configured codes of the
// search space, the parents' plain networks ([0, ..., 0], as the baseline, at most half the
// budget), then samples of ParallelSampler: a pass is added at a stage with probability
// ∝ 1 / its FLOPs, until the limits or a random stop.

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

constexpr char kParallelKey[] = "network.backbone.parallel_code";
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
    if (!o->has_max_optimal()) o->set_max_optimal(1);
    if (!o->has_stop_probability()) o->set_stop_probability(0.25f);
    if (!o->has_max_per_stage()) o->set_max_per_stage(3);
    if (!o->has_max_redraws()) o->set_max_redraws(200);
    if (!o->has_cost_input_size()) o->set_cost_input_size(224);
  }

  static Status ValidateOptions(const Options& o) {
    if (o.max_sample() <= 0) return InvalidArgumentError("max_sample must be > 0");
    if (o.max_optimal() <= 0) return InvalidArgumentError("max_optimal must be > 0");
    if (o.stop_probability() < 0 || o.stop_probability() > 1) {
      return InvalidArgumentError("stop_probability must be in [0, 1]");
    }
    if (o.max_per_stage() <= 0 || o.max_per_stage() > 8) return InvalidArgumentError("max_per_stage must be in 1..8");
    if (o.max_flops_increase() < 0) return InvalidArgumentError("max_flops_increase must be >= 0 (0: no limit)");
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
        if (h.key() != kParallelKey) {
          return InvalidArgumentError("SpNasP reads one hyperparameter from the search space, '", kParallelKey,
                                      "' (the parallel codes to evaluate first); got '", h.key(), "'");
        }
        for (const std::string& text : h.range()) {
          std::vector<int> code;
          for (char c : text) {
            if (c >= '0' && c <= '9') code.push_back(c - '0');
          }
          fixed_codes_.push_back(code);
        }
      }
    }
    for (int input : RankedInputs()) {
      const Trial& trial = context.inputs[input];
      Parent p;
      p.input = input;
      SPNAS_ASSIGN_OR_RETURN(p.serial, SerialCodeOf(trial.desc));
      const int stages = static_cast<int>(SplitStages(p.serial).size());
      // The FLOPs and parameters one pass adds at each stage: the sampler's weights.
      SPNAS_ASSIGN_OR_RETURN(const PluginConfig plain, WithCode(trial.desc, std::vector<int>(stages, 0)));
      SPNAS_ASSIGN_OR_RETURN(p.base, CandidateCosts(plain, options_.cost_input_size(), {}, context.device));
      for (int l = 0; l < stages; ++l) {
        std::vector<int> one(stages, 0);
        one[l] = 1;
        SPNAS_ASSIGN_OR_RETURN(const PluginConfig with_one, WithCode(trial.desc, one));
        SPNAS_ASSIGN_OR_RETURN(auto with, CandidateCosts(with_one, options_.cost_input_size(), {}, context.device));
        p.pass_flops.push_back(with.at("flops") - p.base.at("flops"));
        p.pass_params.push_back(with.at("params") - p.base.at("params"));
      }
      std::string flops;
      for (double f : p.pass_flops) flops += StrCat(" ", static_cast<int64_t>(f / 1e6), "M");
      LOG(INFO) << "SpNasP: parent record " << trial.record.id() << " (" << p.serial
                << "): one parallel pass adds FLOPs per stage:" << flops;
      parents_.push_back(p);
    }
    return Status::Ok();
  }

  StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) override {
    if (static_cast<int>(history.size()) >= options_.max_sample()) return std::optional<Candidate>();
    for (const Trial& t : history) {
      const auto& h = t.record.hyperparameters();
      if (h.count(kCodeKey) && h.count(kParallelKey)) seen_.insert({h.at(kCodeKey), h.at(kParallelKey)});
    }
    for (const std::vector<int>& code : fixed_codes_) {
      for (size_t i = 0; i < parents_.size(); ++i) {
        if (code.size() != parents_[i].pass_flops.size()) continue;
        SPNAS_ASSIGN_OR_RETURN(auto candidate, Make(i, code));
        if (candidate) return candidate;
      }
    }
    for (size_t i = 0; i < parents_.size() && 2 * i < static_cast<size_t>(options_.max_sample()); ++i) {
      SPNAS_ASSIGN_OR_RETURN(auto candidate, Make(i, std::vector<int>(parents_[i].pass_flops.size(), 0)));
      if (candidate) return candidate;
    }
    for (int attempt = 0; attempt < options_.max_redraws(); ++attempt) {
      const size_t i = std::uniform_int_distribution<size_t>(0, parents_.size() - 1)(rng);
      const Parent& p = parents_[i];
      ParallelSampler sampler;
      sampler.pass_flops = p.pass_flops;
      sampler.max_per_stage = options_.max_per_stage();
      sampler.stop_probability = options_.stop_probability();
      sampler.fill_limits = options_.fill_limits();
      sampler.within_limits = [&](const std::vector<int>& code) { return WithinAdditiveLimits(p, code).ok(); };
      SPNAS_ASSIGN_OR_RETURN(auto candidate, Make(i, sampler.Sample({}, rng)));
      if (candidate) return candidate;
    }
    LOG(WARNING) << "SpNasP: no new code within " << options_.max_redraws() << " draws; the search ends";
    return std::optional<Candidate>();
  }

 private:
  struct Parent {
    int input;
    std::string serial;
    std::map<std::string, double> base;
    std::vector<double> pass_flops, pass_params;
  };

  // The inputs to search from, best first: the top max_optimal of the Pareto front of their
  // lineage's metrics (a reignition record's serial parent has the mAP); all inputs, in order,
  // when none has every objective.
  std::vector<int> RankedInputs() const {
    std::vector<Trial> ranked = context_.inputs;
    for (size_t i = 0; i < ranked.size() && i < context_.input_metrics.size(); ++i) {
      auto* metrics = ranked[i].record.mutable_metrics();
      for (const auto& [key, value] : context_.input_metrics[i]) metrics->insert({key, value});
    }
    std::vector<int> order = ParetoFront(ranked, objectives_);
    if (order.empty()) {
      for (size_t i = 0; i < ranked.size(); ++i) order.push_back(static_cast<int>(i));
    }
    order.resize(std::min<size_t>(order.size(), options_.max_optimal()));
    return order;
  }

  // Costs of a code from the per-stage increments (passes add up exactly in FLOPs and params).
  static std::map<std::string, double> AdditiveCosts(const Parent& p, const std::vector<int>& code) {
    std::map<std::string, double> c = p.base;
    for (size_t l = 0; l < code.size(); ++l) {
      c["flops"] += code[l] * p.pass_flops[l];
      c["params"] += code[l] * p.pass_params[l];
    }
    return c;
  }

  // The limits that FLOPs and parameters decide, which add up exactly over the passes.
  Status WithinAdditiveLimits(const Parent& p, const std::vector<int>& code) const {
    const std::map<std::string, double> costs = AdditiveCosts(p, code);
    SPNAS_RETURN_IF_ERROR(CheckLimits(costs, options_.limits()));
    const double most = p.base.at("flops") * (1 + options_.max_flops_increase());
    if (options_.max_flops_increase() > 0 && costs.at("flops") > most) {
      return Status(StatusCode::kOutOfRange, StrCat("flops ", costs.at("flops"), " > ", most, " (the parent's + ",
                                                    100 * options_.max_flops_increase(), "%)"));
    }
    return Status::Ok();
  }

  StatusOr<PluginConfig> WithCode(const PluginConfig& model, const std::vector<int>& code) const {
    return WithParallelCode(model, code, options_.out_channels());
  }

  // The candidate of parent i with `code`; nullopt when it was evaluated already or breaks a
  // limit (measured: latency and memory are not additive).
  StatusOr<std::optional<Candidate>> Make(size_t i, const std::vector<int>& code) {
    const Parent& p = parents_[i];
    if (!seen_.insert({p.serial, CodeText(code)}).second) return std::optional<Candidate>();
    Candidate c;
    SPNAS_ASSIGN_OR_RETURN(c.model, WithCode(context_.inputs[p.input].desc, code));
    Status within = WithinAdditiveLimits(p, code);
    const CostsWanted measured = CostsFor(options_.limits());
    if (within.ok() && (measured.latency || measured.memory)) {
      SPNAS_ASSIGN_OR_RETURN(auto costs,
                             CandidateCosts(c.model, options_.cost_input_size(), measured, context_.device));
      within = CheckLimits(costs, options_.limits());
    }
    if (!within.ok()) {
      LOG(INFO) << "SpNasP: " << p.serial << " " << CodeText(code) << " rejected before training: " << within.message();
      return std::optional<Candidate>();
    }
    c.parent = p.input;
    c.parent_is_input = true;
    c.mutations = {ParallelMutation(code)};
    c.hyperparameters[kCodeKey] = p.serial;
    c.hyperparameters[kParallelKey] = CodeText(code);
    return std::optional<Candidate>(c);
  }

  Options options_;
  SearchContext context_;
  std::vector<std::vector<int>> fixed_codes_;
  std::vector<Parent> parents_;
  std::set<std::pair<std::string, std::string>> seen_;  // (serial code, parallel code)
};

SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, SpNasP);

}  // namespace
}  // namespace spnas
