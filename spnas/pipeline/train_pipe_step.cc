// TrainPipeStep: trains the step's model, or each record of its models_folder (optionally the
// best top_k), keeping each input record's id.
#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "spnas/core/files.h"
#include "spnas/core/logging.h"
#include "spnas/core/objectives.h"
#include "spnas/pipeline/pipe_step.h"
#include "spnas/pipeline/pipe_step_options.pb.h"
#include "spnas/pipeline/trial_runner.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {
namespace {

class TrainPipeStep : public PipeStep {
 public:
  using Options = TrainPipeStepOptions;
  explicit TrainPipeStep(const Options& options) : options_(options) {
    if (options_.rank_by().empty()) options_.set_rank_by("mAP");
  }

  static Status ValidateOptions(const Options& options) {
    if (options.top_k() < 0) return InvalidArgumentError("top_k must be >= 0, got ", options.top_k());
    if (options.rank_by().empty()) return Status::Ok();
    return MetricDirection(options.rank_by(), "rank_by").status();
  }

  void Validate(const LoadedConfig& config, int s, ConfigErrors* errors) const override {
    const StepConfig& step = config.config().step(s);
    if (!step.has_trainer()) {
      errors->Add(config.Where({{"step", s}}), StrCat("step '", step.name(), "' (TrainPipeStep) needs a `trainer`"));
    }
    if (!step.has_model() && step.models_folder().empty()) {
      errors->Add(config.Where({{"step", s}}),
                  StrCat("step '", step.name(), "' (TrainPipeStep) needs a `model` or a `models_folder`"));
    }
    if (step.has_search_algorithm()) {
      errors->Add(config.Where({{"step", s}, {"search_algorithm", -1}}),
                  StrCat("step '", step.name(), "' (TrainPipeStep) does not search; use SearchPipeStep"));
    }
  }

  Status Run(const StepContext& context) override {
    const StepConfig& step = *context.step;
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                           TrainerRegistry().Create(step.trainer().type(), step.trainer().options()));
    std::vector<TrainJob> jobs;
    std::vector<std::string> parents;
    std::vector<Point> hyperparameters;  // carried over from the input records
    if (!context.input_dir.empty()) {
      SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> inputs, LoadInputs(context));
      SPNAS_RETURN_IF_ERROR(SelectIds(&inputs, context.input_dir));
      SelectTop(&inputs);
      for (const Trial& input : inputs) {
        TrainJob job;
        job.trial_id = input.record.id();
        job.model = input.desc;
        if (!options_.from_scratch()) {
          job.parent_model = input.desc;
          job.init_weights = input.weights;
        } else if (!step.pretrained_model_file().empty()) {
          job.init_weights = step.pretrained_model_file();
          job.convert_pretrained = step.convert_pretrained();
        }
        jobs.push_back(job);
        parents.push_back(RecordLabel(context.input_dir, input.record.id()));
        hyperparameters.emplace_back(input.record.hyperparameters().begin(), input.record.hyperparameters().end());
      }
    } else {
      TrainJob job;
      job.model = step.model();
      if (!step.pretrained_model_file().empty()) {
        job.init_weights = step.pretrained_model_file();
        job.convert_pretrained = step.convert_pretrained();
      }
      jobs.push_back(job);
      parents.push_back("");
      hyperparameters.emplace_back();
    }

    RecordStore store(context.output_dir);
    std::set<int> done;
    std::vector<Trial> trials;
    if (context.resume) {
      SPNAS_ASSIGN_OR_RETURN(trials, store.LoadAll());
      for (const Trial& t : trials) done.insert(t.record.id());
    }
    TrialRunner runner(context, store, static_cast<int>(jobs.size()), static_cast<int>(done.size()));
    SPNAS_RETURN_IF_ERROR(MakeDirs(store.folder()));
    // The jobs go to the pool as it has room: one after another in one process, side by side on
    // the workers of a distributed run.
    LocalTrainerPool local;
    TrainerPool& pool = context.workers != nullptr ? *context.workers : local;
    // A data-parallel job takes every rank.
    const auto capacity = [&] { return options_.data_parallel() ? 1 : pool.Capacity(); };
    std::map<int, size_t> running;  // trial id -> index in jobs
    size_t next = 0;
    while (true) {
      for (; next < jobs.size() && static_cast<int>(running.size()) < capacity(); ++next) {
        if (done.count(jobs[next].trial_id)) continue;
        jobs[next].seed = context.TrialSeed(jobs[next].trial_id);
        jobs[next].data_parallel = options_.data_parallel();
        SPNAS_ASSIGN_OR_RETURN(
            jobs[next], runner.Start(std::move(jobs[next]), parents[next], hyperparameters[next], pool, trainer.get()));
        running[jobs[next].trial_id] = next;
      }
      if (running.empty()) break;
      SPNAS_ASSIGN_OR_RETURN(TrainerPool::Done finished, pool.WaitAny());
      auto it = running.find(finished.trial_id);
      if (it == running.end())
        return InternalError("the trainer pool returned trial ", finished.trial_id, ", not running");
      const size_t i = it->second;
      running.erase(it);
      SPNAS_ASSIGN_OR_RETURN(Trial trial, runner.Commit(jobs[i], parents[i], hyperparameters[i], std::move(finished)));
      trials.push_back(std::move(trial));
    }
    std::sort(trials.begin(), trials.end(),
              [](const Trial& a, const Trial& b) { return a.record.id() < b.record.id(); });
    return store.WriteSummary(trials);
  }

 private:
  Status SelectIds(std::vector<Trial>* inputs, const std::string& folder) const {
    if (options_.ids().empty()) return Status::Ok();
    std::vector<Trial> chosen;
    for (int id : options_.ids()) {
      auto it = std::find_if(inputs->begin(), inputs->end(), [&](const Trial& t) { return t.record.id() == id; });
      if (it == inputs->end()) {
        return NotFoundError("ids: no finished record ", id, " in models_folder '", folder, "'");
      }
      chosen.push_back(*it);
    }
    *inputs = std::move(chosen);
    return Status::Ok();
  }
  void SelectTop(std::vector<Trial>* inputs) const {
    if (options_.top_k() == 0 || options_.top_k() >= static_cast<int>(inputs->size())) return;
    const std::string& key = options_.rank_by();
    const Direction direction = MetricDirection(key).value();  // checked by ValidateOptions
    auto value = [&](const Trial& t) {
      auto it = t.record.metrics().find(key);
      return it == t.record.metrics().end() ? -1e300 : Better(direction, it->second);
    };
    std::stable_sort(inputs->begin(), inputs->end(),
                     [&](const Trial& a, const Trial& b) { return value(a) > value(b); });
    inputs->resize(options_.top_k());
  }

  Options options_;
};

SPNAS_REGISTER_PLUGIN(PipeStepRegistry, TrainPipeStep);

}  // namespace
}  // namespace spnas
