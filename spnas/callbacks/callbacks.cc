// The general callbacks: ProgressLogger, MetricsLog, TensorBoardLog, ModelCheckpoint, MetricsEvaluator,
// EarlyStopping.

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "spnas/callbacks/callback_options.pb.h"
#include "spnas/core/format.h"
#include "spnas/core/logging.h"
#include "spnas/core/objectives.h"
#include "spnas/core/record_store.h"
#include "spnas/core/step_folder.h"
#include "spnas/models/checkpoint.h"
#include "spnas/tensorboard/event_writer.h"
#include "spnas/trainers/callback.h"

namespace spnas {

namespace {

// Whether this iteration is a log point: every log_every iterations, and the last one.
bool IsLogPoint(const TrainContext& ctx) {
  return ctx.iteration % ctx.log_every == 0 || ctx.iteration == ctx.total_iterations;
}

// The monitor must be a metric with a known direction.
template <typename Options>
Status ValidateMonitor(const Options& o) {
  return MetricDirection(o.monitor(), "monitor").status();
}

class ProgressLogger : public Callback {
 public:
  using Options = ProgressLoggerOptions;
  explicit ProgressLogger(const Options& o) : every_(o.has_every() ? o.every() : 0) {}
  static Status ValidateOptions(const Options& o) {
    if (o.has_every() && o.every() <= 0) return InvalidArgumentError("every must be > 0");
    return Status::Ok();
  }
  int Priority() const override { return 900; }  // after the others have updated the context

  void AfterIteration(TrainContext& ctx) override {
    const int every = every_ > 0 ? every_ : ctx.log_every;
    if (ctx.iteration % every != 0 && ctx.iteration != ctx.total_iterations) return;
    LOG(INFO) << Prefix(ctx) << "iteration " << ctx.iteration << "/" << ctx.total_iterations << " (epoch "
              << ctx.epoch + 1 << "/" << ctx.epochs << ") lr " << ctx.lr << Losses(ctx) << ", ETA " << Eta(ctx);
  }
  Status AfterEpoch(TrainContext& ctx) override {
    LOG(INFO) << Prefix(ctx) << "epoch " << ctx.epoch + 1 << "/" << ctx.epochs << " done in "
              << FormatDuration(ctx.seconds) << Losses(ctx) << ", ETA " << Eta(ctx);
    return Status::Ok();
  }

 private:
  static std::string Prefix(const TrainContext& ctx) {
    return StrCat("[", ctx.job->step->step->name(), "] trial ", ctx.job->trial_id, ": ");
  }
  static std::string Losses(const TrainContext& ctx) {
    std::string s;
    s += StrCat(", loss ", ctx.losses.Total());
    return s;
  }
  static std::string Eta(const TrainContext& ctx) {
    if (ctx.iteration == 0) return "?";
    return FormatDuration(ctx.seconds / ctx.iteration * (ctx.total_iterations - ctx.iteration));
  }
  int every_;  // 0: the trainer's log_every
};

class MetricsLog : public Callback {
 public:
  using Options = MetricsLogOptions;
  explicit MetricsLog(const Options&) {}
  int Priority() const override { return 950; }  // after the callbacks that change the metrics

  Status BeforeTrain(TrainContext& ctx) override {
    path_ = StepFolder::MetricsLogPath(std::filesystem::path(ctx.job->weights_out).parent_path().string(),
                                       ctx.job->trial_id);
    return Status::Ok();
  }
  void AfterIteration(TrainContext& ctx) override {
    if (!IsLogPoint(ctx)) return;
    nlohmann::json line = Point(ctx);
    line["lr"] = ctx.lr;
    line["seconds"] = ctx.seconds;
    for (const auto& [name, value] : ctx.losses.Read()) line[name] = value;
    line["loss"] = ctx.losses.Total();
    Write(ctx, line);
  }
  Status AfterEpoch(TrainContext& ctx) override { return LogEvaluation(ctx); }
  Status AfterTrain(TrainContext& ctx) override { return LogEvaluation(ctx); }

 private:
  static nlohmann::json Point(const TrainContext& ctx) {
    return {{"iteration", ctx.iteration}, {"epoch", ctx.epoch + 1}};
  }
  Status LogEvaluation(const TrainContext& ctx) {
    if (ctx.evaluations == logged_evaluations_) return Status::Ok();
    logged_evaluations_ = ctx.evaluations;
    nlohmann::json line = Point(ctx);
    for (const auto& [name, value] : ctx.metrics) line[name] = value;
    Write(ctx, line);
    return out_ ? Status::Ok() : FailedPreconditionError("cannot write ", path_);
  }
  void Write(const TrainContext& ctx, const nlohmann::json& line) {
    if (!out_.is_open()) Open(ctx);
    out_ << line.dump() << '\n' << std::flush;
  }
  // A new run starts the file afresh; a resumed one keeps the lines up to where it resumed.
  void Open(const TrainContext& ctx) {
    std::string kept;
    if (ctx.resumed_at > 0) {
      std::ifstream in(path_);
      for (std::string text; std::getline(in, text);) {
        const nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (line.is_object() && line.value("iteration", int64_t{-1}) <= ctx.resumed_at) kept += text + "\n";
      }
    }
    out_.open(path_, std::ios::trunc);
    out_ << kept;
  }

  std::string path_;
  std::ofstream out_;
  int logged_evaluations_ = 0;
};

// TensorBoard curves of a trial in <step output>/tb/<id>/: losses and learning rate every
// log_every iterations, metrics at every evaluation, the model description and final costs as
// text. The trainer adds it to every run.
class TensorBoardLog : public Callback {
 public:
  using Options = TensorBoardLogOptions;
  explicit TensorBoardLog(const Options&) {}
  int Priority() const override { return 950; }  // after the callbacks that change the metrics

  Status BeforeTrain(TrainContext& ctx) override {
    const std::filesystem::path base = ctx.job->step != nullptr
                                           ? std::filesystem::path(ctx.job->step->output_dir)
                                           : std::filesystem::path(ctx.job->weights_out).parent_path();
    SPNAS_ASSIGN_OR_RETURN(writer_,
                           tensorboard::EventWriter::Open((base / "tb" / std::to_string(ctx.job->trial_id)).string()));
    return writer_->AddText("model", "```\n" + ToJson(ctx.model_desc) + "\n```", ctx.iteration);
  }
  void AfterIteration(TrainContext& ctx) override {
    if (!IsLogPoint(ctx)) return;
    for (const auto& [name, value] : ctx.losses.Read()) Keep(writer_->AddScalar("train/" + name, value, ctx.iteration));
    Keep(writer_->AddScalar("train/loss", ctx.losses.Total(), ctx.iteration));
    Keep(writer_->AddScalar("train/lr", ctx.lr, ctx.iteration));
  }
  Status AfterEpoch(TrainContext& ctx) override { return LogEvaluation(ctx); }
  Status AfterTrain(TrainContext& ctx) override {
    SPNAS_RETURN_IF_ERROR(LogEvaluation(ctx));
    std::string table = "| metric | value |\n|---|---|\n";
    for (const auto& [name, value] : ctx.metrics) table += StrCat("| ", name, " | ", value, " |\n");
    SPNAS_RETURN_IF_ERROR(writer_->AddText("final_metrics_and_costs", table, ctx.iteration));
    return status_;
  }

 private:
  Status LogEvaluation(const TrainContext& ctx) {
    if (ctx.evaluations == logged_evaluations_) return status_;
    logged_evaluations_ = ctx.evaluations;
    for (const auto& [name, value] : ctx.metrics) Keep(writer_->AddScalar("eval/" + name, value, ctx.iteration));
    return status_;
  }
  // AfterIteration cannot fail the trial; the first write error is reported at the next
  // evaluation instead.
  void Keep(const Status& status) {
    if (status_.ok() && !status.ok()) status_ = status;
  }

  std::unique_ptr<tensorboard::EventWriter> writer_;
  Status status_;
  int logged_evaluations_ = 0;
};

class ModelCheckpoint : public Callback {
 public:
  using Options = ModelCheckpointOptions;
  explicit ModelCheckpoint(const Options& o) : options_(o) {
    direction_ = MetricDirection(options_.monitor()).value();  // checked by ValidateOptions
  }
  static void SetDefaults(Options* o) {
    if (!o->has_monitor()) o->set_monitor("mAP");
  }
  static Status ValidateOptions(const Options& o) { return ValidateMonitor(o); }
  int Priority() const override { return 500; }

  Status AfterEpoch(TrainContext& ctx) override {
    auto it = ctx.metrics.find(options_.monitor());
    if (it == ctx.metrics.end()) return Status::Ok();
    const double value = Better(direction_, it->second);
    if (value > best_) {
      best_ = value;
      best_metrics_ = ctx.metrics;
      SPNAS_RETURN_IF_ERROR(ctx.save_weights(Path(ctx, "best")));
      LOG(INFO) << "checkpoint: new best " << options_.monitor() << " = " << it->second << " at epoch "
                << ctx.epoch + 1;
    }
    return Status::Ok();
  }

  Status AfterTrain(TrainContext& ctx) override {
    if (!options_.use_best() || best_ == -INFINITY) return Status::Ok();
    // The trial keeps the best epoch's weights and metrics.
    auto it = ctx.metrics.find(options_.monitor());
    const double final_value = it == ctx.metrics.end() ? -INFINITY : Better(direction_, it->second);
    if (final_value >= best_) return Status::Ok();
    SPNAS_ASSIGN_OR_RETURN(StateDict best, LoadWeights(Path(ctx, "best")));
    const LoadReport report = LoadStateDict(*ctx.model, best);
    if (!report.missing.empty() || !report.mismatched.empty()) {
      return InternalError("checkpoint: the best weights do not fit the model: ", report.Summary());
    }
    ctx.notes["checkpoint"] = "best epoch's weights by " + options_.monitor();
    for (const auto& [k, v] : best_metrics_) ctx.metrics[k] = v;
    return Status::Ok();
  }
  std::map<std::string, double> State() const override {
    std::map<std::string, double> state = {{"best", best_}};
    for (const auto& [k, v] : best_metrics_) state["best_metrics." + k] = v;
    return state;
  }
  void Restore(const std::map<std::string, double>& state) override {
    best_metrics_.clear();
    for (const auto& [k, v] : state) {
      if (k == "best") best_ = v;
      if (k.rfind("best_metrics.", 0) == 0) best_metrics_[k.substr(13)] = v;
    }
  }

 private:
  static std::string Path(const TrainContext& ctx, const char* which) {
    return StepFolder::CheckpointPath(ctx.job->weights_out, which);
  }

  Options options_;
  Direction direction_;
  double best_ = -INFINITY;
  std::map<std::string, double> best_metrics_;
};

class MetricsEvaluator : public Callback {
 public:
  using Options = MetricsEvaluatorOptions;
  explicit MetricsEvaluator(const Options& o) : every_(o.every()) {}
  static void SetDefaults(Options* o) {
    if (!o->has_every()) o->set_every(1);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.every() <= 0) return InvalidArgumentError("every must be > 0");
    return Status::Ok();
  }
  int Priority() const override { return 300; }
  Status AfterEpoch(TrainContext& ctx) override {
    if ((ctx.epoch + 1) % every_ == 0 && ctx.epoch + 1 < ctx.epochs) ctx.evaluate();
    return Status::Ok();
  }

 private:
  int every_;
};

class EarlyStopping : public Callback {
 public:
  using Options = EarlyStoppingOptions;
  explicit EarlyStopping(const Options& o) : options_(o) {
    direction_ = MetricDirection(options_.monitor()).value();  // checked by ValidateOptions
  }
  static void SetDefaults(Options* o) {
    if (!o->has_monitor()) o->set_monitor("mAP");
    if (!o->has_patience()) o->set_patience(3);
  }
  static Status ValidateOptions(const Options& o) {
    if (o.patience() <= 0) return InvalidArgumentError("patience must be > 0");
    if (o.min_delta() < 0) return InvalidArgumentError("min_delta must be >= 0");
    return ValidateMonitor(o);
  }
  int Priority() const override { return 600; }
  Status AfterEpoch(TrainContext& ctx) override {
    auto it = ctx.metrics.find(options_.monitor());
    if (it == ctx.metrics.end() || seen_evaluations_ == ctx.evaluations) return Status::Ok();
    seen_evaluations_ = ctx.evaluations;
    const double value = Better(direction_, it->second);
    if (value > best_ + options_.min_delta()) {
      best_ = value;
      bad_ = 0;
    } else if (++bad_ >= options_.patience()) {
      LOG(INFO) << "early stopping: " << options_.monitor() << " has not improved for " << bad_ << " evaluations";
      ctx.notes["early_stopped_epoch"] = std::to_string(ctx.epoch + 1);
      ctx.stop = true;
    }
    return Status::Ok();
  }
  std::map<std::string, double> State() const override {
    return {{"best", best_}, {"bad", bad_}, {"seen_evaluations", seen_evaluations_}};
  }
  void Restore(const std::map<std::string, double>& state) override {
    for (const auto& [k, v] : state) {
      if (k == "best") best_ = v;
      if (k == "bad") bad_ = static_cast<int>(v);
      if (k == "seen_evaluations") seen_evaluations_ = static_cast<int>(v);
    }
  }

 private:
  Options options_;
  Direction direction_;
  double best_ = -INFINITY;
  int bad_ = 0, seen_evaluations_ = 0;
};

SPNAS_REGISTER_PLUGIN(CallbackRegistry, ProgressLogger);
SPNAS_REGISTER_PLUGIN(CallbackRegistry, MetricsLog);
SPNAS_REGISTER_PLUGIN(CallbackRegistry, TensorBoardLog);
SPNAS_REGISTER_PLUGIN(CallbackRegistry, ModelCheckpoint);
SPNAS_REGISTER_PLUGIN(CallbackRegistry, MetricsEvaluator);
SPNAS_REGISTER_PLUGIN(CallbackRegistry, EarlyStopping);

}  // namespace
}  // namespace spnas
