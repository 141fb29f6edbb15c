// The callback kind: hooks into a Trainer's run, in a fixed order (priority, then name).
#ifndef SPNAS_TRAINERS_CALLBACK_H_
#define SPNAS_TRAINERS_CALLBACK_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "spnas/core/pipeline_config.pb.h"
#include "spnas/core/registry.h"
#include "spnas/core/status.h"
#include "spnas/data/dataset.h"
#include "spnas/models/model.h"
#include "spnas/trainers/trainer.h"

namespace spnas {

// The losses of the last iteration, kept on the training device. Reading them copies them to
// the host, which waits for the device: read them where they are logged, not every iteration.
class IterationLosses {
 public:
  // values: [names.size()] on the device, detached.
  void Set(std::vector<std::string> names, at::Tensor values);
  // Values already on the host (data parallel reduces them there).
  void Set(std::map<std::string, double> values);
  // Each loss by name; one copy from the device per Set, however often it is called.
  const std::map<std::string, double>& Read() const;
  double Total() const;

 private:
  std::vector<std::string> names_;
  at::Tensor values_;
  mutable std::optional<std::map<std::string, double>> host_;
};

// What a training run is doing; callbacks read it and may change it.
struct TrainContext {
  const TrainJob* job = nullptr;
  std::shared_ptr<Model> model;    // what is trained (a Detector or a Classifier)
  c10::Device device = c10::kCPU;  // where it trains: a model set by BeforeTrain is moved there
  PluginConfig model_desc;         // its description, written to the record
  std::shared_ptr<Dataset> train_data, val_data;
  torch::optim::Optimizer* optimizer = nullptr;
  int epoch = 0, epochs = 0;  // epoch is 0-based
  int64_t iteration = 0, iterations_per_epoch = 0, total_iterations = 0;
  double lr = 0;
  int log_every = 20;                     // iterations between progress lines (TrainerOptions.log_every)
  IterationLosses losses;                 // of the last iteration
  std::map<std::string, double> metrics;  // of the last evaluation, plus costs at the end
  int evaluations = 0;                    // evaluations so far
  std::map<std::string, std::string> notes;
  double seconds = 0;          // since training started
  int64_t resumed_at = 0;      // the iteration a resumed run continued from (0: from the start)
  bool stop = false;           // set to end training after this iteration/epoch
  bool skip_training = false;  // set before training: keep the weights as they are
  // Evaluates the current model on val_data and returns (and records) the metrics.
  std::function<std::map<std::string, double>()> evaluate;
  // Writes the current model's weights to a path, atomically.
  std::function<Status(const std::string&)> save_weights;
};

class Callback {
 public:
  virtual ~Callback() = default;
  // Lower runs first; ties run by name.
  virtual int Priority() const { return 100; }
  virtual Status BeforeTrain(TrainContext&) { return Status::Ok(); }
  virtual void AfterIteration(TrainContext&) {}
  virtual Status AfterEpoch(TrainContext&) { return Status::Ok(); }
  virtual Status AfterTrain(TrainContext&) { return Status::Ok(); }
  // What the callback must remember when a cut-off run is resumed: the trainer's checkpoint
  // keeps it, and gives it back before the run continues.
  virtual std::map<std::string, double> State() const { return {}; }
  virtual void Restore(const std::map<std::string, double>&) {}
};

SPNAS_DECLARE_REGISTRY(CallbackRegistry, Callback);

}  // namespace spnas

#endif  // SPNAS_TRAINERS_CALLBACK_H_
