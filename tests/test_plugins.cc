// Plugins for framework tests: a real (tiny) torch model and a trainer whose score is a known
// function of the model, so search and resume behaviour can be checked exactly.
//
// SPNAS_TEST_KILL_AT_TRIAL=N makes the trainer SIGKILL its own process when trial N starts
// ("any": the first trial it trains).
#include "tests/test_plugins.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include <c10/util/Exception.h>
#include <torch/nn/modules/linear.h>

#include "spnas/core/dotted_keys.h"
#include "spnas/core/files.h"
#include "spnas/core/objectives.h"
#include "spnas/models/model.h"
#include "tests/test_plugins.pb.h"

namespace spnas::testing {
namespace {

SPNAS_DECLARE_METRIC_DIRECTION("score", Direction::kMaximize);

class TinyMlp : public Model {
 public:
  using Options = TinyMlpOptions;
  explicit TinyMlp(const Options& options) {
    const int inputs = options.inputs() > 0 ? options.inputs() : 4;
    fc1_ = register_module("fc1", torch::nn::Linear(inputs, options.hidden()));
    fc2_ = register_module("fc2", torch::nn::Linear(options.hidden(), 1));
  }
  static Status ValidateOptions(const Options& options) {
    if (options.hidden() <= 0) return InvalidArgumentError("hidden must be > 0, got ", options.hidden());
    return Status::Ok();
  }

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

class AnalyticTrainer : public Trainer {
 public:
  using Options = AnalyticTrainerOptions;
  explicit AnalyticTrainer(const Options& options) : options_(options) {}

  StatusOr<TrainResult> Train(const TrainJob& job) override {
    const char* kill_at = std::getenv("SPNAS_TEST_KILL_AT_TRIAL");
    if (kill_at != nullptr && (std::string(kill_at) == "any" || std::atoi(kill_at) == job.trial_id)) {
      std::raise(SIGKILL);
    }
    TrainCalls().fetch_add(1);
    if (options_.train_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options_.train_ms()));
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ModelRegistry().Create(job.model.type(), job.model.options()));
    SPNAS_ASSIGN_OR_RETURN(std::string hidden_text, GetByKey(job.model, "network.hidden"));
    const int hidden = std::stoi(hidden_text);
    if (hidden == options_.fail_hidden()) throw std::runtime_error("test failure for hidden=" + hidden_text);
    TORCH_CHECK_WITH(OutOfMemoryError, hidden != options_.oom_hidden(),
                     "CUDA out of memory. Tried to allocate 20.00 GiB (test, hidden=", hidden_text, ")");
    int64_t params = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    TrainResult result;
    const double d = (hidden - options_.best_hidden()) / 8.0;
    result.metrics["score"] = -d * d;
    result.metrics["params"] = static_cast<double>(params);
    const std::string weights = StrCat("weights of trial ", job.trial_id, " from '", job.init_weights, "'\n",
                                       std::string(options_.weights_bytes(), '.'));
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(job.weights_out, weights));
    result.wrote_weights = true;
    return result;
  }

 private:
  Options options_;
};

SPNAS_REGISTER_PLUGIN(ModelRegistry, TinyMlp);
SPNAS_REGISTER_PLUGIN(TrainerRegistry, AnalyticTrainer);

}  // namespace

std::atomic<int>& TrainCalls() {
  static std::atomic<int> calls{0};
  return calls;
}

}  // namespace spnas::testing
