// The trainer kind: trains (or fine-tunes) one model description and measures it.
#ifndef SPNAS_TRAINERS_TRAINER_H_
#define SPNAS_TRAINERS_TRAINER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/records.pb.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/core/step_context.h"
#include "spnas/trainers/collective.h"

namespace spnas {

struct TrainJob {
  int trial_id = 0;
  PluginConfig model;               // the model to build
  PluginConfig parent_model;        // the model `init_weights` belong to (type "" when none)
  std::string init_weights;         // weights to start from; "" = fresh initialisation
  std::vector<Mutation> mutations;  // edits from parent_model to model
  std::string weights_out;          // where to write the trained weights
  // The training checkpoint, written as the job trains ("" = none); with `resume`, a checkpoint
  // of this same job there is continued from.
  std::string checkpoint;
  bool resume = false;
  // Train only what was not inherited unchanged from parent_model (freeze_swap_keys).
  bool freeze_inherited = false;
  // init_weights is a torchvision checkpoint: load it by name (convert_pretrained); tensors of
  // another shape (a predictor for another class count) keep their fresh initialisation.
  bool convert_pretrained = false;
  uint64_t seed = 0;
  const StepContext* step = nullptr;
  // A callback that first trains another model from this one and hands it back (a
  // ReignitionCallback within a search): the trainer runs it alone, with the step's data and
  // budget, then trains the handed-back model as this job says. Type "" when none.
  PluginConfig pretrain;
  // Data parallel: train one model over the ranks of `collective` (null: a group of this
  // process alone), each rank on its share of every batch of batch_size x ranks samples; rank
  // 0 evaluates and writes the weights and checkpoints.
  bool data_parallel = false;
  std::shared_ptr<Collective> collective;
};

struct TrainResult {
  TrialStatus status = FINISHED;
  std::string error;
  std::map<std::string, double> metrics;
  bool wrote_weights = false;
  // The trained model's description when it differs from the job's (e.g. a reignition count).
  PluginConfig model;
  std::map<std::string, std::string> notes;
};

class Trainer {
 public:
  virtual ~Trainer() = default;
  // An error Status (or an exception) marks the trial FAILED; the step goes on.
  virtual StatusOr<TrainResult> Train(const TrainJob& job) = 0;
};

SPNAS_DECLARE_REGISTRY(TrainerRegistry, Trainer);

}  // namespace spnas

#endif  // SPNAS_TRAINERS_TRAINER_H_
