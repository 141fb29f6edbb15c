// SpNasS: serial-level search (docs/sp_nas.md, serial search). Each candidate is a parent from the top of the
// current Pareto front with num_mutate mutations (expand, swap, add stage), evaluated from the
// parent's weights, or with equal_training from its lineage's input weights. The initial
// parents (the input records, or the search space's codes) are evaluated first with the same
// budget, so the front compares like with like. When the front stalls, its members are
// reignited and the search goes on from them (stall_candidates).

#include <set>

#include "spnas/core/logging.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/inheritance.h"
#include "spnas/models/searchable.h"
#include "spnas/search/candidate_cost.h"
#include "spnas/search/pareto.h"
#include "spnas/search/search_algorithm.h"
#include "spnas/search/serial_mutation.h"

namespace spnas {
namespace {

constexpr char kCodeKey[] = "network.backbone.code";

class SpNasS : public ParetoSearchAlgorithm {
 public:
  using Options = SpNasSOptions;
  explicit SpNasS(const Options& options) : options_(options) {}

  static void SetDefaults(Options* o) {
    if (o->objective_keys().empty()) {
      o->add_objective_keys("mAP");
      o->add_objective_keys("params");
    }
    if (!o->has_max_sample()) o->set_max_sample(20);
    if (!o->has_max_optimal()) o->set_max_optimal(5);
    if (!o->has_num_mutate()) o->set_num_mutate(3);
    if (!o->has_add_stage_ratio()) o->set_add_stage_ratio(0.05f);
    if (!o->has_expend_ratio()) o->set_expend_ratio(0.3f);
    if (!o->has_max_stages()) o->set_max_stages(6);
    if (!o->has_max_redraws()) o->set_max_redraws(200);
    if (!o->has_cost_input_size()) o->set_cost_input_size(224);
    if (!o->has_stall_candidates()) o->set_stall_candidates(0);
    if (!o->has_max_reignitions()) o->set_max_reignitions(2);
    if (o->stall_candidates() > 0 && !o->has_reignition()) o->mutable_reignition()->set_type("ReignitionCallback");
  }

  static Status ValidateOptions(const Options& o) {
    if (o.max_sample() <= 0) return InvalidArgumentError("max_sample must be > 0");
    SPNAS_RETURN_IF_ERROR(Objectives(o.objective_keys()).status());
    if (o.max_optimal() <= 0) return InvalidArgumentError("max_optimal must be > 0");
    if (o.num_mutate() <= 0) return InvalidArgumentError("num_mutate must be > 0");
    for (float r : {o.add_stage_ratio(), o.expend_ratio()}) {
      if (r < 0 || r > 1) return InvalidArgumentError("add_stage_ratio and expend_ratio must be in [0, 1]");
    }
    if ((o.max_stages() < 4 || o.max_stages() > 7)) {
      return InvalidArgumentError("max_stages must be in 4..7 (the serial code's range), got ", o.max_stages());
    }
    if (o.stall_candidates() < 0) return InvalidArgumentError("stall_candidates must be >= 0 (0: never reignite)");
    if (o.max_reignitions() < 0) return InvalidArgumentError("max_reignitions must be >= 0");
    if (o.equal_training() && o.stall_candidates() > 0) {
      return InvalidArgumentError(
          "equal_training and stall_candidates exclude each other: a reignited candidate hands on weights trained "
          "longer than its lineage's input");
    }
    return Status::Ok();
  }

  Status Init(const SearchContext& context) override {
    SPNAS_ASSIGN_OR_RETURN(objectives_, Objectives(options_.objective_keys()));
    if (options_.equal_training() && context.inputs.empty()) {
      return InvalidArgumentError(
          "equal_training: candidates start from the weights of the step's input records, and this step has none "
          "(set models_folder)");
    }
    max_sample_ = options_.max_sample();
    context_ = context;
    // Initial parents: the input records, or the base model with each code of the space.
    if (!context.inputs.empty()) {
      for (size_t i = 0; i < context.inputs.size(); ++i) {
        SPNAS_ASSIGN_OR_RETURN(std::string code, SerialCodeOf(context.inputs[i].desc));
        seeds_.push_back({context.inputs[i].desc, code, static_cast<int>(i)});
      }
    } else {
      std::vector<std::string> codes;
      if (context.space != nullptr) {
        for (const Hyperparameter& h : context.space->hyperparameters()) {
          if (h.key() == kCodeKey || h.key() == "backbone.code") codes.assign(h.range().begin(), h.range().end());
        }
      }
      if (codes.empty()) {
        SPNAS_ASSIGN_OR_RETURN(std::string code, SerialCodeOf(context.base_model));
        codes.push_back(code);
      }
      for (const std::string& code : codes) {
        SPNAS_ASSIGN_OR_RETURN(PluginConfig model, WithSerialCode(context.base_model, code));
        seeds_.push_back({model, code, -1});
      }
    }
    for (const Seed& s : seeds_) SPNAS_RETURN_IF_ERROR(ParseSerialCode(s.code).status());
    return Status::Ok();
  }

  void SetRunning(const std::vector<Candidate>& running) override { running_ = running; }

  StatusOr<std::optional<Candidate>> Propose(const std::vector<Trial>& history, std::mt19937_64& rng) override {
    if (static_cast<int>(history.size()) >= options_.max_sample()) return std::optional<Candidate>();
    std::set<std::string> seen;
    for (const Trial& t : history) {
      auto it = t.record.hyperparameters().find(kCodeKey);
      if (it != t.record.hyperparameters().end()) seen.insert(it->second);
    }
    for (const Candidate& c : running_) {
      auto it = c.hyperparameters.find(kCodeKey);
      if (it != c.hyperparameters.end()) seen.insert(it->second);
    }
    // First the initial parents themselves, with the candidates' budget.
    for (const Seed& seed : seeds_) {
      if (seen.count(seed.code)) continue;
      Candidate c;
      c.model = seed.model;
      c.parent = seed.input;
      c.parent_is_input = seed.input >= 0;
      c.hyperparameters[kCodeKey] = seed.code;
      return std::optional<Candidate>(c);
    }

    if (options_.stall_candidates() > 0) {
      SPNAS_ASSIGN_OR_RETURN(std::optional<Candidate> reignition, ProposeReignition(history));
      if (reignition) return reignition;
    }

    // Parents: the top max_optimal of the Pareto front (the seeds' trials while nothing else
    // finished). In a distributed run, while the seeds' own trials still train, the seeds.
    struct Parent {
      const PluginConfig* desc;
      std::string code;
      int index;  // whose weights the child starts from: into the history, or the inputs (is_input); -1: none
      bool is_input;
      std::vector<Mutation> edits;  // from the weights' model to `desc` (equal_training)
    };
    std::vector<Parent> parents;
    const std::vector<int> front = ParetoFront(history, objectives_);
    for (size_t i = 0; i < front.size() && static_cast<int>(i) < options_.max_optimal(); ++i) {
      const Trial& t = history[front[i]];
      Parent p{&t.desc, t.record.hyperparameters().at(kCodeKey), front[i], false, {}};
      if (options_.equal_training()) {
        SPNAS_ASSIGN_OR_RETURN(p.index, InputOf(t));
        p.is_input = true;
        p.edits.assign(t.record.mutations().begin(), t.record.mutations().end());
      }
      parents.push_back(std::move(p));
    }
    if (parents.empty() && !running_.empty()) {
      for (const Seed& seed : seeds_) parents.push_back({&seed.model, seed.code, seed.input, seed.input >= 0, {}});
    }
    if (parents.empty()) {
      return FailedPreconditionError("SpNasS: no finished trial has all objectives (", JoinKeys(),
                                     "); every candidate so far failed");
    }
    for (int attempt = 0; attempt < options_.max_redraws(); ++attempt) {
      const Parent& p = parents[std::uniform_int_distribution<size_t>(0, parents.size() - 1)(rng)];
      std::string code = p.code;
      std::vector<Mutation> mutations = p.edits;
      for (int k = 0; k < options_.num_mutate(); ++k) {
        std::optional<Mutated> m;
        const double r = std::uniform_real_distribution<double>(0, 1)(rng);
        if (r < options_.add_stage_ratio()) m = AddStage(code, options_.max_stages());
        if (!m && std::uniform_real_distribution<double>(0, 1)(rng) < options_.expend_ratio())
          m = ExpandCode(code, rng);
        if (!m) {
          m = std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? SwapWidth(code, rng) : SwapStage(code, rng);
        }
        if (!m) continue;
        code = m->code;
        mutations.push_back(m->mutation);
      }
      if (mutations.size() == p.edits.size() || seen.count(code) || !ParseSerialCode(code).ok() ||
          static_cast<int>(SplitStages(code).size()) > options_.max_stages()) {
        continue;  // a duplicate or an invalid code: redraw
      }
      Candidate c;
      SPNAS_ASSIGN_OR_RETURN(c.model, WithSerialCode(*p.desc, code));
      const Status within = CheckModelLimits(c.model, options_.limits(), options_.cost_input_size(), context_.device);
      if (within.code() == StatusCode::kOutOfRange) {
        LOG(INFO) << "SpNasS: candidate " << code << " rejected before training: " << within.message();
        seen.insert(code);
        continue;
      }
      SPNAS_RETURN_IF_ERROR(within);
      c.parent = p.index;
      c.parent_is_input = p.is_input;
      c.mutations = mutations;
      c.hyperparameters[kCodeKey] = code;
      return std::optional<Candidate>(c);
    }
    LOG(WARNING) << "SpNasS: no new valid candidate within " << options_.max_redraws() << " draws; the search ends";
    return std::optional<Candidate>();
  }

 private:
  // The input record a trial of an equal_training search started from (its parent).
  StatusOr<int> InputOf(const Trial& t) const {
    for (size_t i = 0; i < context_.input_labels.size(); ++i) {
      if (context_.input_labels[i] == t.record.parent()) return static_cast<int>(i);
    }
    return FailedPreconditionError("equal_training: trial ", t.record.id(), "'s parent '", t.record.parent(),
                                   "' is none of the step's input records");
  }

  static bool IsReignition(const Trial& t) {
    for (const Mutation& m : t.record.mutations()) {
      if (m.has_reignition()) return true;
    }
    return false;
  }

  // Reignition of the front once it stalls: the front has not improved (no finished candidate
  // undominated by, and different from, every earlier one) for stall_candidates candidates
  // since the last improvement or reignition round. A round reignites the top max_optimal
  // front members one after another (a trial once, a lineage at most max_reignitions times);
  // it ends when none is left.
  StatusOr<std::optional<Candidate>> ProposeReignition(const std::vector<Trial>& history) const {
    int stalled = 0;
    std::set<int> reignited, this_round;  // parents reignited; trials of the running round
    std::vector<std::map<std::string, double>> earlier;
    for (const Trial& t : history) {
      const bool reignition = IsReignition(t);
      if (reignition) {
        if (const auto parent = ParseRecordLabel(t.record.parent())) reignited.insert(parent->second);
        this_round.insert(t.record.id());
        stalled = 0;
      } else {
        this_round.clear();
      }
      const auto m = ObjectiveValues(t, objectives_);
      if (!m) continue;
      bool improved = true;
      for (const auto& e : earlier) improved &= !Dominates(e, *m, objectives_) && e != *m;
      if (!reignition) stalled = improved ? 0 : stalled + 1;
      earlier.push_back(*m);
    }
    const bool in_round = !history.empty() && IsReignition(history.back());
    if (!in_round && stalled < options_.stall_candidates()) return std::optional<Candidate>();
    const std::vector<int> front = ParetoFront(history, objectives_);
    for (size_t i = 0; i < front.size() && static_cast<int>(i) < options_.max_optimal(); ++i) {
      const Trial& p = history[front[i]];
      if (reignited.count(p.record.id()) || this_round.count(p.record.id())) continue;
      SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<SearchableModel> searchable, Searchable(p.desc));
      SPNAS_ASSIGN_OR_RETURN(const int count, searchable->Reignitions());
      if (count >= options_.max_reignitions()) continue;
      LOG(INFO) << "SpNasS: the front has not improved for " << stalled << " candidates: reignition of trial "
                << p.record.id() << " (" << p.record.hyperparameters().at(kCodeKey) << ")";
      Candidate c;
      c.model = p.desc;
      c.parent = front[i];
      c.mutations = {ReignitionMutation()};
      c.hyperparameters[kCodeKey] = p.record.hyperparameters().at(kCodeKey);
      c.pretrain = options_.reignition();
      return std::optional<Candidate>(c);
    }
    return std::optional<Candidate>();
  }

  struct Seed {
    PluginConfig model;
    std::string code;
    int input;  // index into the inputs, or -1
  };
  std::string JoinKeys() const {
    std::string s;
    for (const auto& o : objectives_) s += (s.empty() ? "" : ", ") + o.key;
    return s;
  }

  Options options_;
  SearchContext context_;
  std::vector<Seed> seeds_;
  std::vector<Candidate> running_;  // proposed, still training (a distributed run)
};

SPNAS_REGISTER_PLUGIN(SearchAlgorithmRegistry, SpNasS);

}  // namespace
}  // namespace spnas
