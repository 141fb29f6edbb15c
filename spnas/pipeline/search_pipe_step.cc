// SearchPipeStep: asks a search algorithm for candidates, trains each from its parent's weights,
// records every trial under trials/, and outputs the algorithm's selection (e.g. the Pareto
// front) as the step's records.
#include <filesystem>
#include <map>
#include <memory>
#include <regex>

#include "spnas/core/files.h"
#include "spnas/core/logging.h"
#include "spnas/core/step_folder.h"
#include "spnas/pipeline/pipe_step.h"
#include "spnas/pipeline/pipe_step_options.pb.h"
#include "spnas/pipeline/trial_runner.h"
#include "spnas/search/search_algorithm.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;

// Removes the records of an earlier selection, so the folder holds exactly the new one.
void ClearRecords(const std::string& folder) {
  const std::regex record("(desc|performance|model)_[0-9]+\\.(json|pth)");
  std::error_code ec;
  if (!fs::is_directory(folder)) return;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (std::regex_match(entry.path().filename().string(), record)) fs::remove(entry.path(), ec);
  }
}

class SearchPipeStep : public PipeStep {
 public:
  using Options = SearchPipeStepOptions;
  explicit SearchPipeStep(const Options& options) : options_(options) {}

  void Validate(const LoadedConfig& config, int s, ConfigErrors* errors) const override {
    const StepConfig& step = config.config().step(s);
    if (!step.has_search_algorithm()) {
      errors->Add(config.Where({{"step", s}}),
                  StrCat("step '", step.name(), "' (SearchPipeStep) needs a `search_algorithm`"));
    }
    if (!step.has_trainer()) {
      errors->Add(config.Where({{"step", s}}), StrCat("step '", step.name(), "' (SearchPipeStep) needs a `trainer`"));
    }
    if (!step.has_model() && step.models_folder().empty()) {
      errors->Add(config.Where({{"step", s}}),
                  StrCat("step '", step.name(), "' (SearchPipeStep) needs a `model` or a `models_folder`"));
    }
    // The search space's keys must exist in the model.
    if (step.has_search_space() && step.has_model() && SearchSpaceRegistry().Has(step.search_space().type())) {
      auto space = SearchSpaceRegistry().Create(step.search_space().type(), step.search_space().options());
      if (space.ok()) {
        std::mt19937_64 rng(0);
        PluginConfig model = step.model();
        Status applied = (*space)->Apply((*space)->Sample(rng), &model);
        if (!applied.ok()) errors->Add(config.Where({{"step", s}, {"search_space", -1}}), applied.message());
      }
    }
  }

  Status Run(const StepContext& context) override {
    const StepConfig& step = *context.step;
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                           TrainerRegistry().Create(step.trainer().type(), step.trainer().options()));
    SPNAS_ASSIGN_OR_RETURN(
        std::unique_ptr<SearchAlgorithm> algorithm,
        SearchAlgorithmRegistry().Create(step.search_algorithm().type(), step.search_algorithm().options()));
    std::unique_ptr<SearchSpace> space;
    if (step.has_search_space()) {
      SPNAS_ASSIGN_OR_RETURN(space,
                             SearchSpaceRegistry().Create(step.search_space().type(), step.search_space().options()));
    }
    SearchContext search;
    search.space = space.get();
    search.base_model = step.model();
    search.device = context.general().device();
    if (!context.input_dir.empty()) {
      SPNAS_ASSIGN_OR_RETURN(search.inputs, LoadInputs(context));
      search.input_metrics = LineageMetrics(context.input_dir, search.inputs);
      for (const Trial& t : search.inputs) search.input_labels.push_back(RecordLabel(context.input_dir, t.record.id()));
    }
    SPNAS_RETURN_IF_ERROR(algorithm->Init(search));

    RecordStore trials_store(StepFolder(context.output_dir).TrialsDir());
    std::vector<Trial> history;
    if (context.resume) {
      SPNAS_ASSIGN_OR_RETURN(history, trials_store.LoadAll());
      if (!history.empty()) {
        LOG(INFO) << "[" << step.name() << "] resuming after " << history.size() << " finished trials";
      }
    }
    TrialRunner runner(context, trials_store, algorithm->Budget(), static_cast<int>(history.size()));
    SPNAS_RETURN_IF_ERROR(MakeDirs(trials_store.folder()));
    // Proposals go to the pool whenever it has room, each from the history finished so far
    // (steady-state); in one process the pool holds one job, so the search is sequential.
    LocalTrainerPool local;
    TrainerPool& pool = context.workers != nullptr ? *context.workers : local;
    struct Running {
      TrainJob job;
      std::string parent_label;
      Candidate candidate;
      // The trials still training when this one was proposed, which its proposal did not see
      // (a distributed run): with the finished records, what the proposal was made from.
      std::string running_at_proposal;
    };
    std::map<int, Running> running;
    auto repeats_running = [](const Candidate& c, const std::map<int, Running>& running) {
      if (c.hyperparameters.empty()) return false;
      for (const auto& [id, r] : running) {
        if (r.candidate.hyperparameters == c.hyperparameters) return true;
      }
      return false;
    };
    int next_id = 0;
    for (const Trial& t : history) next_id = std::max(next_id, t.record.id() + 1);
    const int budget = algorithm->Budget();
    bool exhausted = false;
    while (true) {
      while (!exhausted && static_cast<int>(running.size()) < pool.Capacity() &&
             (budget < 0 || static_cast<int>(history.size() + running.size()) < budget)) {
        const int id = next_id;
        std::mt19937_64 rng(context.TrialSeed(id));
        std::vector<Candidate> running_candidates;
        for (const auto& [other, r] : running) running_candidates.push_back(r.candidate);
        algorithm->SetRunning(running_candidates);
        StatusOr<std::optional<Candidate>> proposed = algorithm->Propose(history, rng);
        // The algorithm sees finished trials only. While others run, a proposal that fails, ends
        // the search or repeats a running candidate may be one their results change: it waits
        // for one of them to finish, and is made again.
        if (!running.empty() && (!proposed.ok() || !proposed->has_value() || repeats_running(**proposed, running))) {
          break;
        }
        SPNAS_ASSIGN_OR_RETURN(std::optional<Candidate> candidate, std::move(proposed));
        if (!candidate.has_value()) {
          exhausted = true;
          break;
        }
        ++next_id;
        std::string parent_label;
        SPNAS_ASSIGN_OR_RETURN(TrainJob job, JobFor(*candidate, id, context, search.inputs, history, &parent_label));
        SPNAS_ASSIGN_OR_RETURN(
            job, runner.Start(std::move(job), parent_label, candidate->hyperparameters, pool, trainer.get()));
        std::string running_ids;
        for (const auto& [other, r] : running) running_ids += StrCat(running_ids.empty() ? "" : ",", other);
        running[id] = Running{job, parent_label, *candidate, running_ids};
      }
      if (running.empty()) break;
      SPNAS_ASSIGN_OR_RETURN(TrainerPool::Done done, pool.WaitAny());
      auto it = running.find(done.trial_id);
      if (it == running.end()) return InternalError("the trainer pool returned trial ", done.trial_id, ", not running");
      Running finished = std::move(it->second);
      running.erase(it);
      if (done.result.ok() && !finished.running_at_proposal.empty()) {
        done.result->notes["proposed_while_running"] = finished.running_at_proposal;
      }
      SPNAS_ASSIGN_OR_RETURN(Trial trial, runner.Commit(finished.job, finished.parent_label,
                                                        finished.candidate.hyperparameters, std::move(done)));
      history.push_back(std::move(trial));
    }
    SPNAS_RETURN_IF_ERROR(trials_store.WriteSummary(history));

    // Publish the selection as the step's records.
    const std::vector<int> selected = algorithm->SelectOutputs(history);
    RecordStore output(context.output_dir);
    ClearRecords(context.output_dir);
    std::vector<Trial> published;
    for (const Trial& t : history) {
      if (std::find(selected.begin(), selected.end(), t.record.id()) == selected.end()) continue;
      SPNAS_RETURN_IF_ERROR(output.Import(t, trials_store));
      published.push_back(t);
    }
    LOG(INFO) << "[" << step.name() << "] " << history.size() << " trials, " << published.size()
              << " selected as the step's output";
    return output.WriteSummary(published);
  }

 private:
  // The job that trains `candidate` as trial `id`, and the label of its parent ("" for none).
  StatusOr<TrainJob> JobFor(const Candidate& candidate, int id, const StepContext& context,
                            const std::vector<Trial>& inputs, const std::vector<Trial>& history,
                            std::string* parent_label) const {
    const StepConfig& step = *context.step;
    TrainJob job;
    job.trial_id = id;
    job.model = candidate.model;
    job.mutations = candidate.mutations;
    job.seed = context.TrialSeed(id);
    job.freeze_inherited = options_.freeze_swap_keys();
    job.pretrain = candidate.pretrain;
    parent_label->clear();
    if (candidate.parent >= 0) {
      const std::vector<Trial>& parents = candidate.parent_is_input ? inputs : history;
      if (candidate.parent >= static_cast<int>(parents.size())) {
        return InternalError("search algorithm '", step.search_algorithm().type(), "' named parent index ",
                             candidate.parent, " of ", parents.size());
      }
      const Trial& parent = parents[candidate.parent];
      job.parent_model = parent.desc;
      job.init_weights = parent.weights;
      *parent_label = candidate.parent_is_input ? RecordLabel(context.input_dir, parent.record.id())
                                                : StrCat(step.name(), "/", parent.record.id());
    } else if (!step.pretrained_model_file().empty()) {
      // The file holds the step's model, which the search space edits into each candidate:
      // a candidate takes the tensors that fit.
      job.init_weights = step.pretrained_model_file();
      job.convert_pretrained = step.convert_pretrained();
      if (step.has_model()) job.parent_model = step.model();
    }
    return job;
  }

  Options options_;
};

SPNAS_REGISTER_PLUGIN(PipeStepRegistry, SearchPipeStep);

}  // namespace
}  // namespace spnas
