// The trials of a pipe step around their training: where each writes, FAILED records for errors
// and exceptions, each record committed atomically, progress logged with an ETA.
#ifndef SPNAS_PIPELINE_TRIAL_RUNNER_H_
#define SPNAS_PIPELINE_TRIAL_RUNNER_H_

#include <chrono>
#include <string>

#include "spnas/core/record_store.h"
#include "spnas/core/step_context.h"
#include "spnas/search/search_space.h"
#include "spnas/trainers/trainer.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {

class TrialRunner {
 public:
  // `budget`: trials the step will run in all (-1 unknown); `done`: already finished ones.
  TrialRunner(const StepContext& context, RecordStore store, int budget, int done);

  // A trial in two parts, around its training by a TrainerPool. Start fills in where the job
  // writes (its weights, its checkpoint), says it starts and submits it to `pool`; it returns
  // the job as submitted. Commit records what the pool gave for it. Only an I/O failure (a full
  // disk included) is an error of Commit; a trial's own failure is recorded in the Trial.
  StatusOr<TrainJob> Start(TrainJob job, const std::string& parent_label, const Point& hyperparameters,
                           TrainerPool& pool, Trainer* trainer) const;
  StatusOr<Trial> Commit(const TrainJob& job, const std::string& parent_label, const Point& hyperparameters,
                         TrainerPool::Done done);

 private:
  const StepContext& context_;
  RecordStore store_;
  int budget_;
  int done_;
  int run_ = 0;
  // For the ETA: wall time per finished trial, which counts trials training side by side on
  // the workers of a distributed run once.
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  Provenance provenance_;  // the same for every trial of the step
};

// Loads the records of a step's models_folder; an empty or missing folder is an error that
// names the step that should have filled it.
StatusOr<std::vector<Trial>> LoadInputs(const StepContext& context);

// "<step or folder name>/<id>".
std::string RecordLabel(const std::string& folder, int id);

// Per input of `input_dir`: its metrics completed with those of its ancestors, followed
// through the records' parent labels ("<step>/<id>") among the folders next to input_dir.
std::vector<std::map<std::string, double>> LineageMetrics(const std::string& input_dir,
                                                          const std::vector<Trial>& inputs);

}  // namespace spnas

#endif  // SPNAS_PIPELINE_TRIAL_RUNNER_H_
