// Trainer: trains a Detector or a Classifier described by a TrainJob, evaluates it, measures
// its cost, and writes its weights. Callbacks of the step hook into the run.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "spnas/core/files.h"
#include "spnas/core/format.h"
#include "spnas/core/logging.h"
#include "spnas/core/random.h"
#include "spnas/core/record_store.h"
#include "spnas/data/loader.h"
#include "spnas/device/device.h"
#include "spnas/metrics/evaluate.h"
#include "spnas/metrics/metric.h"
#include "spnas/models/batch_norm.h"
#include "spnas/models/checkpoint.h"
#include "spnas/models/cost.h"
#include "spnas/models/inheritance.h"
#include "spnas/trainers/callback.h"
#include "spnas/trainers/gradient_reducer.h"
#include "spnas/trainers/mixed_precision.h"
#include "spnas/trainers/optimizer.h"
#include "spnas/trainers/trainer.h"
#include "spnas/trainers/trainer_options.pb.h"

namespace spnas {
namespace {

// The first iteration whose total loss is not finite, and its losses, tracked on the device so
// that a training step does not wait for the host to look.
class DivergenceWatch {
 public:
  // losses: [n] (double, detached), named by `names`; total: their sum.
  void Observe(const std::vector<std::string>& names, const at::Tensor& losses, const at::Tensor& total,
               int64_t iteration) {
    names_ = names;
    if (!state_.defined()) state_ = at::full({losses.size(0) + 2}, -1.0, losses.options());
    // state_: [first bad iteration or -1, its total, its losses...]
    const at::Tensor first = at::isfinite(total).logical_not().logical_and(state_[0] < 0);
    const at::Tensor now = at::cat(
        {at::full({1}, static_cast<double>(iteration), losses.options()), total.to(at::kDouble).reshape({1}), losses});
    state_ = at::where(first, now, state_);
    last_ = losses;
  }
  // Whether a loss was not finite so far. Hands `current` the last iteration's losses, read in
  // the same copy from the device.
  bool Diverged(IterationLosses* current) {
    if (!state_.defined()) return false;
    const at::Tensor host = at::cat({state_, last_}).cpu();
    const double* v = host.data_ptr<double>();
    std::map<std::string, double> last;
    for (size_t i = 0; i < names_.size(); ++i) last[names_[i]] = v[state_.size(0) + i];
    current->Set(std::move(last));
    if (v[0] < 0) return false;
    iteration_ = static_cast<int64_t>(v[0]);
    total_ = v[1];
    for (size_t i = 0; i < names_.size(); ++i) losses_[names_[i]] = v[2 + i];
    return true;
  }
  int64_t iteration() const { return iteration_; }
  double total() const { return total_; }
  const std::map<std::string, double>& losses() const { return losses_; }

 private:
  std::vector<std::string> names_;
  at::Tensor state_, last_;
  int64_t iteration_ = -1;
  double total_ = 0;
  std::map<std::string, double> losses_;
};

class DefaultTrainer : public Trainer {
 public:
  using Options = TrainerOptions;
  explicit DefaultTrainer(const Options& options) : options_(options) {}

  static void SetDefaults(Options* o) {
    if (!o->has_epochs()) o->set_epochs(1);
    if (!o->has_batch_size()) o->set_batch_size(2);
    if (!o->has_warmup_factor()) o->set_warmup_factor(0.001f);
    if (!o->has_num_workers()) o->set_num_workers(1);
    if (!o->has_log_every()) o->set_log_every(20);
    if (!o->has_optimizer()) o->mutable_optimizer()->set_type("SGD");
  }

  static Status ValidateOptions(const Options& o) {
    if (o.epochs() < 0) return InvalidArgumentError("epochs must be >= 0, got ", o.epochs());
    if (o.max_iterations() < 0) return InvalidArgumentError("max_iterations must be >= 0");
    if (o.batch_size() <= 0) return InvalidArgumentError("batch_size must be > 0");
    if (o.warmup_iterations() < 0) return InvalidArgumentError("warmup_iterations must be >= 0");
    if (o.warmup_factor() <= 0 || o.warmup_factor() > 1) {
      return InvalidArgumentError("warmup_factor must be in (0, 1]");
    }
    if (o.grad_clip_norm() < 0) return InvalidArgumentError("grad_clip_norm must be >= 0");
    if (o.eval_every_epochs() < 0) return InvalidArgumentError("eval_every_epochs must be >= 0");
    if (o.num_workers() < 1) return InvalidArgumentError("num_workers must be >= 1");
    if (o.log_every() < 1) return InvalidArgumentError("log_every must be >= 1, got ", o.log_every());
    return Status::Ok();
  }

  StatusOr<TrainResult> Train(const TrainJob& job) override {
    if (job.pretrain.type().empty()) return TrainWith(job, job.step->step->callback());
    // The pre-training callback alone, then the model it hands back, from its weights.
    TrainJob first = job;
    first.pretrain.Clear();
    first.weights_out = job.weights_out + ".pretrained";
    if (!job.checkpoint.empty()) first.checkpoint = job.checkpoint + ".pretraining";
    google::protobuf::RepeatedPtrField<PluginConfig> pretrain;
    *pretrain.Add() = job.pretrain;
    SPNAS_ASSIGN_OR_RETURN(TrainResult pretrained, TrainWith(first, pretrain));
    if (pretrained.status != FINISHED) return pretrained;
    TrainJob second = job;
    second.pretrain.Clear();
    if (!pretrained.model.type().empty()) second.model = pretrained.model;
    second.parent_model = second.model;
    second.init_weights = first.weights_out;
    second.mutations.clear();
    second.freeze_inherited = false;
    second.convert_pretrained = false;
    StatusOr<TrainResult> result = TrainWith(second, job.step->step->callback());
    std::error_code ec;
    std::filesystem::remove(first.weights_out, ec);
    if (!first.checkpoint.empty()) std::filesystem::remove(first.checkpoint, ec);
    if (!result.ok()) return result;
    // The pre-training's own metrics (reignition_accuracy) join the record.
    result->metrics.insert(pretrained.metrics.begin(), pretrained.metrics.end());
    result->notes.insert(pretrained.notes.begin(), pretrained.notes.end());
    if (result->model.type().empty()) result->model = second.model;
    return result;
  }

 private:
  StatusOr<TrainResult> TrainWith(const TrainJob& job,
                                  const google::protobuf::RepeatedPtrField<PluginConfig>& callback_configs) {
    const StepConfig& step = *job.step->step;
    torch::manual_seed(job.seed);
    collective_.reset();
    if (job.data_parallel) collective_ = job.collective ? job.collective : std::make_shared<SoloCollective>();
    TrainContext ctx;
    ctx.job = &job;
    ctx.log_every = options_.log_every();
    ctx.model_desc = job.model;
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ModelRegistry().Create(job.model.type(), job.model.options()));
    ctx.model = std::shared_ptr<Model>(model.release());
    SPNAS_RETURN_IF_ERROR(InitWeights(job, *ctx.model));
    SPNAS_ASSIGN_OR_RETURN(device_, ResolveDevice(job.step->general().device()));
    ctx.device = device_;

    if (!step.has_train_data()) return FailedPreconditionError("step '", step.name(), "' has no `train_data`");
    SPNAS_ASSIGN_OR_RETURN(ctx.train_data, LoadDatasetCached(step.train_data()));
    if (step.has_val_data()) {
      SPNAS_ASSIGN_OR_RETURN(ctx.val_data, LoadDatasetCached(step.val_data()));
    }

    // Callbacks in (priority, name) order; progress lines every log_every iterations, the
    // metrics log and the TensorBoard log unless the step configures its own.
    std::vector<std::pair<std::string, std::unique_ptr<Callback>>> callbacks;
    std::set<std::string> configured;
    for (const PluginConfig& c : callback_configs) {
      SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Callback> cb, CallbackRegistry().Create(c.type(), c.options()));
      configured.insert(c.type());
      callbacks.emplace_back(c.type(), std::move(cb));
    }
    for (const char* always : {"ProgressLogger", "MetricsLog", "TensorBoardLog"}) {
      if (configured.count(always) || !CallbackRegistry().Has(always)) continue;
      SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Callback> cb, CallbackRegistry().Create(always, google::protobuf::Any()));
      callbacks.emplace_back(always, std::move(cb));
    }
    std::stable_sort(callbacks.begin(), callbacks.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.second->Priority(), a.first) < std::make_pair(b.second->Priority(), b.first);
    });

    ctx.evaluate = [&]() { return Evaluate(ctx, step); };
    ctx.save_weights = [&](const std::string& path) { return SaveWeights(path, GetStateDict(*ctx.model)); };
    for (auto& [name, cb] : callbacks) SPNAS_RETURN_IF_ERROR(cb->BeforeTrain(ctx));
    ctx.model->to(device_);

    TrainResult result;
    if (!ctx.skip_training) {
      ResetPeakMemory(device_);
      try {
        SPNAS_RETURN_IF_ERROR(Loop(ctx, callbacks, &result));
      } catch (const c10::OutOfMemoryError& e) {
        // The trial fails, the search goes on: give the memory back for the next one.
        ctx.model.reset();
        ReleaseCachedMemory(device_);
        const std::string what = e.what();
        return FailedPreconditionError("out of memory on ", device_.str(), " while training (batch_size ",
                                       options_.batch_size(), "): ", what.substr(0, what.find('\n')));
      }
      if (result.status != FINISHED) return result;
      const int64_t peak = PeakMemoryBytes(device_);
      if (peak >= 0) ctx.metrics["train_peak_memory_mb"] = static_cast<double>(peak) / (1 << 20);
    }
    if (ctx.val_data != nullptr && options_.epochs() > 0) ctx.evaluate();
    for (auto& [name, cb] : callbacks) SPNAS_RETURN_IF_ERROR(cb->AfterTrain(ctx));

    if (Leads()) {
      Costs(ctx, &ctx.metrics);
      SPNAS_RETURN_IF_ERROR(SaveWeights(job.weights_out, GetStateDict(*ctx.model)));
      result.wrote_weights = true;
    }
    result.metrics = ctx.metrics;
    result.model = ctx.model_desc;
    result.notes = ctx.notes;
    if (ctx.resumed_at > 0) result.notes["resumed_at_iteration"] = std::to_string(ctx.resumed_at);
    return result;
  }

  // Starts from init_weights: inherited through the mutations when the parent differs.
  Status InitWeights(const TrainJob& job, Model& model) {
    if (job.init_weights.empty()) return Status::Ok();
    SPNAS_ASSIGN_OR_RETURN(StateDict parent, LoadWeights(job.init_weights));
    if (job.convert_pretrained) {
      const LoadReport report = LoadStateDict(model, parent);
      LOG(INFO) << "convert_pretrained " << job.init_weights << ": " << report.Summary();
      if (report.loaded.empty()) {
        return InvalidArgumentError("convert_pretrained: no tensor of '", job.init_weights,
                                    "' matches the model by name");
      }
      return Status::Ok();
    }
    const PluginConfig& parent_desc = job.parent_model.type().empty() ? job.model : job.parent_model;
    SPNAS_ASSIGN_OR_RETURN(InheritReport report, InheritWeights(parent, parent_desc, job.model, job.mutations, model));
    LOG(INFO) << "weights from " << job.init_weights << ": " << report.Summary();
    // The same model, unchanged: every tensor must come from the file, or it is another model's.
    if (job.mutations.empty() && ToJson(parent_desc) == ToJson(job.model) &&
        (!report.fresh.empty() || !report.reshaped.empty())) {
      const std::string example = !report.fresh.empty() ? report.fresh[0] : report.reshaped[0];
      return InvalidArgumentError("'", job.init_weights, "' does not hold the weights of this model: ",
                                  report.fresh.size() + report.reshaped.size(),
                                  " of its tensors are missing or of another shape there (e.g. '", example, "')");
    }
    if (job.freeze_inherited) {
      std::set<std::string> frozen(report.inherited.begin(), report.inherited.end());
      int64_t n = 0;
      for (auto& item : model.named_parameters()) {
        if (frozen.count(item.key()) && item.value().requires_grad()) {
          item.value().set_requires_grad(false);
          ++n;
        }
      }
      LOG(INFO) << "freeze_swap_keys: " << n << " inherited parameters frozen; training the new and reshaped ones";
    }
    return Status::Ok();
  }

  LoaderOptions Loader(const TrainJob& job, bool train) const {
    LoaderOptions o;
    o.batch_size = options_.batch_size();
    o.shuffle = train;
    o.horizontal_flip = train && options_.horizontal_flip();
    o.seed = job.seed;
    o.workers = options_.num_workers();
    o.max_samples = train ? 0 : options_.max_eval_images();
    o.device = device_;
    if (train && collective_ != nullptr) {
      o.rank = collective_->rank();
      o.ranks = collective_->size();
      o.image_generators = true;
    }
    return o;
  }

  // Whether this process evaluates and writes: always, except on the other ranks of a
  // data-parallel group.
  bool Leads() const { return collective_ == nullptr || collective_->rank() == 0; }

  // Data parallel: replaces this rank's losses by the global batch's (each rank's weighted by
  // its samples; 0 for a stand-in batch) and returns this rank's share of the batch's samples.
  double GlobalLosses(int64_t samples, std::map<std::string, double>* losses, double* total) const {
    std::vector<double> values;
    for (const auto& [name, loss] : *losses) values.push_back(loss * static_cast<double>(samples));
    values.push_back(static_cast<double>(samples));
    const at::Tensor sum = collective_->AllReduceSum(at::tensor(values, at::kDouble)).contiguous();
    const double* summed = sum.data_ptr<double>();
    const double all = summed[values.size() - 1];
    *total = 0;
    int64_t i = 0;
    for (auto& [name, loss] : *losses) {
      loss = summed[i++] / all;
      *total += loss;
    }
    return static_cast<double>(samples) / all;
  }

  // Data parallel: a stop asked for on any rank (by a callback) stops every rank at once.
  bool AnyRankStops(bool stop) const {
    if (collective_ == nullptr) return stop;
    return collective_->AllReduceSum(at::full({1}, stop ? 1.0 : 0.0, at::kDouble))[0].item<double>() > 0;
  }

  Status Loop(TrainContext& ctx, std::vector<std::pair<std::string, std::unique_ptr<Callback>>>& callbacks,
              TrainResult* result) {
    auto* detector = dynamic_cast<Detector*>(ctx.model.get());
    auto* classifier = dynamic_cast<Classifier*>(ctx.model.get());
    if (detector == nullptr && classifier == nullptr) {
      return InvalidArgumentError("model '", ctx.model_desc.type(), "' is neither a detector nor a classifier");
    }
    auto* det_data = dynamic_cast<DetectionDataset*>(ctx.train_data.get());
    auto* cls_data = dynamic_cast<ClassificationDataset*>(ctx.train_data.get());
    if (detector != nullptr && det_data == nullptr)
      return InvalidArgumentError("a detector needs a detection train_data");
    if (classifier != nullptr && cls_data == nullptr) {
      return InvalidArgumentError("a classifier needs a classification train_data");
    }
    const TrainerOptions::Precision precision = options_.mixed_precision();
    // Validation refuses this before any trial runs; a trainer built otherwise still says why.
    if (precision == TrainerOptions::FLOAT16 && !device_.is_cuda()) {
      return InvalidArgumentError("mixed_precision FLOAT16 needs a CUDA device; general.device is ", device_.str(),
                                  " (BFLOAT16 runs on the CPU too)");
    }
    const c10::ScalarType autocast_dtype = precision == TrainerOptions::FLOAT16    ? c10::kHalf
                                           : precision == TrainerOptions::BFLOAT16 ? c10::kBFloat16
                                                                                   : c10::kFloat;
    LossScaler scaler(precision == TrainerOptions::FLOAT16, device_);
    // Data parallel: BatchNorm in training normalises by the global batch's statistics.
    std::shared_ptr<BatchNormGroup> norm_group;
    std::optional<BatchNormGroupScope> norm_scope;
    if (collective_ != nullptr) {
      norm_group = std::make_shared<BatchNormGroup>();
      norm_group->rank = collective_->rank();
      norm_group->size = collective_->size();
      norm_group->sum = [collective = collective_](const at::Tensor& values) {
        return collective->AllReduceSum(values);
      };
      norm_scope.emplace(norm_group);
    }
    std::unique_ptr<DetectionLoader> det_loader;
    std::unique_ptr<ClassificationLoader> cls_loader;
    if (detector) det_loader = std::make_unique<DetectionLoader>(*det_data, Loader(*ctx.job, true));
    if (classifier) cls_loader = std::make_unique<ClassificationLoader>(*cls_data, Loader(*ctx.job, true));

    std::vector<at::Tensor> params;
    for (const auto& p : ctx.model->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
    if (params.empty()) return FailedPreconditionError("the model has no trainable parameters");
    const PluginConfig& opt_config = options_.optimizer();
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<OptimizerFactory> factory,
                           OptimizerRegistry().Create(opt_config.type(), opt_config.options()));
    std::unique_ptr<torch::optim::Optimizer> optimizer = factory->Make(params);
    std::unique_ptr<GradientReducer> reducer;
    if (collective_ != nullptr && collective_->size() > 1) {
      reducer = std::make_unique<GradientReducer>(params, collective_->Split("gradients"));
    }
    std::unique_ptr<LrSchedule> schedule;
    if (options_.has_lr_schedule()) {
      SPNAS_ASSIGN_OR_RETURN(
          schedule, LrScheduleRegistry().Create(options_.lr_schedule().type(), options_.lr_schedule().options()));
    }
    ctx.optimizer = optimizer.get();
    ctx.epochs = options_.epochs();
    ctx.iterations_per_epoch = detector ? det_loader->NumBatches() : cls_loader->NumBatches();
    ctx.total_iterations = ctx.iterations_per_epoch * ctx.epochs;
    if (options_.max_iterations() > 0) ctx.total_iterations = std::min(ctx.total_iterations, options_.max_iterations());

    TrainingState state{ctx, callbacks, *optimizer, params, scaler};
    DivergenceWatch divergence;
    ctx.epoch = 0;
    if (ctx.job->resume && !ctx.job->checkpoint.empty()) Resume(state);
    const double seconds_before = ctx.seconds;
    const auto start = std::chrono::steady_clock::now();
    // A resumed run that had finished training, or was stopped, goes straight to its evaluation.
    const bool done = ctx.stop || ctx.iteration >= ctx.total_iterations;
    for (; ctx.epoch < ctx.epochs && !ctx.stop && !done; ++ctx.epoch) {
      ctx.model->train();
      const int64_t first_batch = ctx.iteration - ctx.epoch * ctx.iterations_per_epoch;
      auto det_epoch = detector ? det_loader->Epoch(ctx.epoch, first_batch) : nullptr;
      auto cls_epoch = classifier ? cls_loader->Epoch(ctx.epoch, first_batch) : nullptr;
      try {
        while (!ctx.stop && ctx.iteration < ctx.total_iterations) {
          std::map<std::string, at::Tensor> losses;
          bool more = true;
          int64_t samples = 0;  // data parallel: 0 for a stand-in batch
          {
            AutocastScope autocast(device_.type(), autocast_dtype);  // the forward pass only, not the backward
            if (detector) {
              DetectionBatch batch;
              more = det_epoch->Next(&batch);
              samples = batch.padding ? 0 : static_cast<int64_t>(batch.images.size());
              if (norm_group) norm_group->padding = batch.padding;
              if (more) losses = detector->Forward(batch.images, &batch.targets).losses;
            } else {
              ClassificationBatch batch;
              more = cls_epoch->Next(&batch);
              samples = !more || batch.padding ? 0 : batch.labels.size(0);
              if (norm_group) norm_group->padding = batch.padding;
              if (more) {
                losses["loss_classifier"] =
                    torch::nn::functional::cross_entropy(classifier->Forward(batch.images), batch.labels);
              }
            }
          }
          if (!more) break;
          ctx.lr = schedule
                       ? schedule->Lr(factory->BaseLr(), ctx.iteration, ctx.iterations_per_epoch, ctx.total_iterations)
                       : factory->BaseLr();
          if (ctx.iteration < options_.warmup_iterations()) {
            const double alpha = static_cast<double>(ctx.iteration) / options_.warmup_iterations();
            ctx.lr *= options_.warmup_factor() * (1 - alpha) + alpha;
          }
          SetLearningRate(*optimizer, ctx.lr);
          at::Tensor total = at::zeros({}, at::TensorOptions().device(device_));
          std::vector<std::string> names;
          std::vector<at::Tensor> values;
          for (const auto& [name, loss] : losses) {
            total = total + loss;
            names.push_back(name);
            values.push_back(loss.detach().to(at::kDouble));
          }
          const at::Tensor stacked = at::stack(values);
          ctx.losses.Set(names, stacked);
          double share = 1;
          if (collective_ != nullptr) {
            // Data parallel reduces the losses on the host every iteration (a sync), so that every
            // rank sees a divergence at the same iteration and stops there.
            std::map<std::string, double> global = ctx.losses.Read();
            double value = 0;
            share = GlobalLosses(samples, &global, &value);
            ctx.losses.Set(global);
            if (!std::isfinite(value)) return Diverged(ctx.iteration, value, global, ctx, result);
          } else {
            divergence.Observe(names, stacked, total.detach(), ctx.iteration);
          }
          optimizer->zero_grad();
          // Data parallel: each rank back-propagates its part of the global batch's loss.
          if (reducer) reducer->Begin();
          scaler.Scale(collective_ != nullptr ? total * share : total).backward();
          if (reducer) reducer->Finish();
          // A float16 step whose gradients overflowed is skipped; the scaler lowers its scale.
          if (scaler.Unscale(params)) {
            if (options_.grad_clip_norm() > 0) ClipGradNorm(params, options_.grad_clip_norm());
            optimizer->step();
          }
          scaler.Update();
          ++ctx.iteration;
          // The host learns of a non-finite loss at log points, epoch ends and checkpoints only;
          // the iterations between cost nothing, and a diverged trial keeps no weights.
          if (IsCheckPoint(ctx) && divergence.Diverged(&ctx.losses)) return Diverged(divergence, ctx, result);
          ctx.seconds =
              seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          for (auto& [name, cb] : callbacks) cb->AfterIteration(ctx);
          ctx.stop = AnyRankStops(ctx.stop);
          // Mid-epoch checkpoints; the epoch's last iteration is checkpointed after the epoch.
          const bool epoch_end = ctx.iteration % ctx.iterations_per_epoch == 0 || ctx.iteration == ctx.total_iterations;
          if (options_.checkpoint_every() > 0 && ctx.iteration % options_.checkpoint_every() == 0 && !epoch_end) {
            SPNAS_RETURN_IF_ERROR(SaveCheckpoint(state, ctx.epoch));
          }
        }
      } catch (const c10::OutOfMemoryError&) {
        throw;
      } catch (const std::exception&) {
        // A step after a non-finite loss can fail on its NaNs (no proposal left, say): the trial
        // diverged, which is what it records.
        if (divergence.Diverged(&ctx.losses)) return Diverged(divergence, ctx, result);
        throw;
      }
      if (options_.eval_every_epochs() > 0 && (ctx.epoch + 1) % options_.eval_every_epochs() == 0 &&
          ctx.epoch + 1 < ctx.epochs && ctx.val_data) {
        ctx.evaluate();
      }
      for (auto& [name, cb] : callbacks) SPNAS_RETURN_IF_ERROR(cb->AfterEpoch(ctx));
      ctx.stop = AnyRankStops(ctx.stop);
      SPNAS_RETURN_IF_ERROR(SaveCheckpoint(state, ctx.epoch + 1));
      if (ctx.iteration >= ctx.total_iterations) break;
    }
    return Status::Ok();
  }

  // Where the host reads the losses: every log_every iterations, at each epoch's end and
  // checkpoint, and at the last iteration.
  bool IsCheckPoint(const TrainContext& ctx) const {
    return ctx.iteration % ctx.log_every == 0 || ctx.iteration % ctx.iterations_per_epoch == 0 ||
           ctx.iteration == ctx.total_iterations ||
           (options_.checkpoint_every() > 0 && ctx.iteration % options_.checkpoint_every() == 0);
  }

  // Records a trial whose loss was not finite at `iteration` (0-based); the training ends there.
  static Status Diverged(int64_t iteration, double total, const std::map<std::string, double>& losses,
                         const TrainContext& ctx, TrainResult* result) {
    result->status = DIVERGED;
    std::string parts;
    for (const auto& [name, v] : losses) parts += StrCat(" ", name, "=", v);
    result->error = StrCat("non-finite loss ", total, " at iteration ", iteration + 1, " (epoch ",
                           iteration / ctx.iterations_per_epoch + 1, "):", parts);
    return Status::Ok();
  }
  static Status Diverged(const DivergenceWatch& watch, const TrainContext& ctx, TrainResult* result) {
    return Diverged(watch.iteration(), watch.total(), watch.losses(), ctx, result);
  }

  // What a training checkpoint holds beyond the context.
  struct TrainingState {
    TrainContext& ctx;
    std::vector<std::pair<std::string, std::unique_ptr<Callback>>>& callbacks;
    torch::optim::Optimizer& optimizer;
    const std::vector<at::Tensor>& params;
    LossScaler& scaler;
  };

  // What makes a checkpoint this job's: the model, where its weights came from, the seed and
  // the trainer's options.
  int64_t JobFingerprint(const TrainJob& job) const {
    std::string text =
        StrCat(job.trial_id, "|", ToJson(job.model), "|", ToJson(job.parent_model), "|", job.init_weights, "|",
               job.seed, "|", job.freeze_inherited, job.convert_pretrained, "|", ToJson(options_));
    for (const Mutation& m : job.mutations) text += "|" + ToJson(m);
    return static_cast<int64_t>(Fnv1a64(text));
  }

  // The checkpoint of the run where epoch `epoch` continues, at ctx.iteration (model_<id>.last.pth):
  // sections "model" (torchvision names), "optimizer" (as torch.optim numbers parameters),
  // "trainer" (position, random state, loss scale), "metrics" and "callbacks".
  Status SaveCheckpoint(TrainingState& s, int epoch) {
    const TrainContext& ctx = s.ctx;
    if (ctx.job->checkpoint.empty() || !Leads()) return Status::Ok();
    std::map<std::string, StateDict> sections;
    sections["model"] = GetStateDict(*ctx.model);
    StatusOr<StateDict> optimizer = OptimizerState(s.optimizer, s.params);
    if (!optimizer.ok()) {
      // An optimizer plugin whose state spnas cannot save: the trial trains on, without a
      // checkpoint (a cut-off trial starts over).
      if (!warned_no_checkpoint_) LOG(WARNING) << "no training checkpoint: " << optimizer.status().message();
      warned_no_checkpoint_ = true;
      return Status::Ok();
    }
    sections["optimizer"] = std::move(optimizer).value();
    StateDict& trainer = sections["trainer"];
    auto integer = [](int64_t v) { return at::scalar_tensor(v, at::kLong); };
    auto real = [](double v) { return at::scalar_tensor(v, at::kDouble); };
    trainer["job"] = integer(JobFingerprint(*ctx.job));
    trainer["epoch"] = integer(epoch);
    trainer["iteration"] = integer(ctx.iteration);
    trainer["iterations_per_epoch"] = integer(ctx.iterations_per_epoch);
    trainer["stop"] = integer(ctx.stop);
    trainer["evaluations"] = integer(ctx.evaluations);
    trainer["seconds"] = real(ctx.seconds);
    for (const auto& [name, tensor] : RandomState()) trainer[name] = tensor;
    for (const auto& [name, tensor] : s.scaler.State()) trainer[name] = tensor;
    for (const auto& [name, value] : ctx.metrics) sections["metrics"][name] = real(value);
    for (const auto& [name, cb] : s.callbacks) {
      for (const auto& [key, value] : cb->State()) sections["callbacks"][name + "." + key] = real(value);
    }
    return SaveSections(ctx.job->checkpoint, sections);
  }

  // The random generators the training draws from: the CPU's, and the device's on CUDA.
  std::vector<std::pair<std::string, at::Generator>> Generators() const {
    std::vector<std::pair<std::string, at::Generator>> generators = {{"rng_cpu", at::detail::getDefaultCPUGenerator()}};
    if (device_.is_cuda()) generators.emplace_back("rng_cuda", at::globalContext().defaultGenerator(device_));
    return generators;
  }
  StateDict RandomState() const {
    StateDict state;
    for (auto& [name, generator] : Generators()) {
      std::lock_guard<std::mutex> lock(generator.mutex());
      state[name] = generator.get_state();
    }
    return state;
  }

  // Continues from the job's checkpoint when it is this job's. A checkpoint that cannot be used
  // (another job's, unreadable, not fitting the model) is reported, and training starts over.
  void Resume(TrainingState& s) {
    TrainContext& ctx = s.ctx;
    const std::string& path = ctx.job->checkpoint;
    if (!std::filesystem::exists(path)) return;
    const Status status = Restore(s);
    if (status.ok()) {
      ctx.resumed_at = ctx.iteration;
      LOG(INFO) << "[" << ctx.job->step->step->name() << "] trial " << ctx.job->trial_id << " resumes at iteration "
                << ctx.iteration << "/" << ctx.total_iterations << " (epoch " << ctx.epoch + 1 << ") from " << path;
      return;
    }
    LOG(WARNING) << "[" << ctx.job->step->step->name() << "] trial " << ctx.job->trial_id << " starts over: " << path
                 << " cannot be resumed from: " << status.message();
    ctx.epoch = 0;
    ctx.iteration = 0;
    s.optimizer.state().clear();
  }

  Status Restore(TrainingState& s) {
    TrainContext& ctx = s.ctx;
    SPNAS_ASSIGN_OR_RETURN(auto sections, LoadSections(ctx.job->checkpoint));
    const StateDict& trainer = sections["trainer"];
    for (const char* key : {"job", "epoch", "iteration", "iterations_per_epoch", "stop", "evaluations", "seconds"}) {
      if (!trainer.count(key) || trainer.at(key).numel() != 1) return InvalidArgumentError("no trainer.", key);
    }
    auto integer = [&](const char* key) { return trainer.at(key).item<int64_t>(); };
    if (integer("job") != JobFingerprint(*ctx.job)) return InvalidArgumentError("it is another job's checkpoint");
    if (integer("iterations_per_epoch") != ctx.iterations_per_epoch) {
      return InvalidArgumentError("its epochs have ", integer("iterations_per_epoch"), " iterations, this run's ",
                                  ctx.iterations_per_epoch);
    }
    const int64_t epoch = integer("epoch"), iteration = integer("iteration");
    if (epoch < 0 || epoch > ctx.epochs || iteration < epoch * ctx.iterations_per_epoch ||
        iteration > std::min(ctx.total_iterations, (epoch + 1) * ctx.iterations_per_epoch)) {
      return InvalidArgumentError("its position (epoch ", epoch, ", iteration ", iteration, ") is out of range");
    }
    // Everything is checked before anything changes.
    const StateDict& model = sections["model"];
    const StateDict current = GetStateDict(*ctx.model);
    for (const auto& [name, tensor] : current) {
      auto it = model.find(name);
      if (it == model.end() || !it->second.sizes().equals(tensor.sizes()) || it->second.dtype() != tensor.dtype()) {
        return InvalidArgumentError("its model does not fit: '", name, "'");
      }
    }
    if (model.size() != current.size()) return InvalidArgumentError("its model has tensors this model lacks");
    std::vector<std::pair<at::Generator, at::Tensor>> random;
    for (auto& [name, generator] : Generators()) {
      auto it = trainer.find(name);
      if (it == trainer.end()) return InvalidArgumentError("no trainer.", name);
      random.emplace_back(generator, it->second);
    }
    SPNAS_RETURN_IF_ERROR(RestoreOptimizerState(s.optimizer, s.params, sections["optimizer"]));
    try {
      for (auto& [generator, state] : random) {
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(state);
      }
    } catch (const c10::Error& e) {
      return InvalidArgumentError("its random state does not fit: ", e.what_without_backtrace());
    }
    LoadStateDict(*ctx.model, model);
    s.scaler.Restore(trainer);
    ctx.epoch = static_cast<int>(epoch);
    ctx.iteration = iteration;
    ctx.stop = integer("stop") != 0;
    ctx.evaluations = static_cast<int>(integer("evaluations"));
    ctx.seconds = trainer.at("seconds").item<double>();
    ctx.metrics.clear();
    for (const auto& [name, value] : sections["metrics"]) ctx.metrics[name] = value.item<double>();
    std::map<std::string, std::map<std::string, double>> callback_state;
    for (const auto& [key, value] : sections["callbacks"]) {
      const size_t dot = key.find('.');
      if (dot != std::string::npos) callback_state[key.substr(0, dot)][key.substr(dot + 1)] = value.item<double>();
    }
    for (auto& [name, cb] : s.callbacks) cb->Restore(callback_state[name]);
    return Status::Ok();
  }

  std::map<std::string, double> Evaluate(TrainContext& ctx, const StepConfig& step) {
    std::map<std::string, double> metrics;
    if (ctx.val_data == nullptr || !Leads()) return metrics;
    at::NoGradGuard no_grad;
    ctx.model->eval();
    const auto start = std::chrono::steady_clock::now();
    if (auto* detector = dynamic_cast<Detector*>(ctx.model.get())) {
      auto* data = dynamic_cast<DetectionDataset*>(ctx.val_data.get());
      if (data == nullptr) throw std::runtime_error("a detector needs a detection val_data");
      std::vector<std::unique_ptr<DetectionMetric>> evaluators;
      if (step.metric().empty()) {
        evaluators.push_back(ValueOrThrow(MetricRegistry().Create("COCO", google::protobuf::Any())));
      }
      for (const PluginConfig& m : step.metric()) {
        evaluators.push_back(ValueOrThrow(MetricRegistry().Create(m.type(), m.options())));
      }
      EvaluateDetector(
          DetectionLoader(*data, Loader(*ctx.job, false)),
          [detector](const std::vector<at::Tensor>& images) { return detector->Forward(images).detections; },
          evaluators);
      for (auto& e : evaluators) {
        for (const auto& [k, v] : e->Compute()) metrics[k] = v;
      }
    } else if (auto* classifier = dynamic_cast<Classifier*>(ctx.model.get())) {
      auto* data = dynamic_cast<ClassificationDataset*>(ctx.val_data.get());
      if (data == nullptr) throw std::runtime_error("a classifier needs a classification val_data");
      ClassificationLoader loader(*data, Loader(*ctx.job, false));
      auto epoch = loader.Epoch(0);
      ClassificationBatch batch;
      int64_t correct = 0, total = 0;
      while (epoch->Next(&batch)) {
        correct += (classifier->Forward(batch.images).argmax(1) == batch.labels).sum().item<int64_t>();
        total += batch.labels.size(0);
      }
      metrics["accuracy"] = total > 0 ? 100.0 * correct / total : 0;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string text;
    for (const auto& [k, v] : metrics) text += StrCat(" ", k, "=", v);
    LOG(INFO) << "[" << ctx.job->step->step->name() << "] trial " << ctx.job->trial_id << " eval (epoch " << ctx.epoch
              << ", " << FormatDuration(seconds) << "):" << text;
    ctx.model->train();
    for (const auto& [k, v] : metrics) ctx.metrics[k] = v;
    ++ctx.evaluations;
    return metrics;
  }

  // params, FLOPs (multiply-adds of the backbone and neck, or of the classifier) and latency.
  void Costs(TrainContext& ctx, std::map<std::string, double>* metrics) {
    int64_t size = options_.cost_input_size();
    if (size == 0) {
      const auto* data = dynamic_cast<DetectionDataset*>(ctx.train_data.get());
      const bool detector = dynamic_cast<Detector*>(ctx.model.get()) != nullptr;
      size = !detector ? 32 : data != nullptr && data->Size() > 0 ? data->Get(0).image.size(-1) : 224;
    }
    for (const auto& [key, value] :
         ModelCosts(*ctx.model, size, device_, options_.measure_latency() ? 10 : 0, /*memory=*/true)) {
      (*metrics)[key] = value;
    }
  }

  Options options_;
  c10::Device device_ = c10::kCPU;
  std::shared_ptr<Collective> collective_;  // data parallel: the ranks training the job together
  bool warned_no_checkpoint_ = false;
};

SPNAS_REGISTER_PLUGIN_AS(TrainerRegistry, DefaultTrainer, "Trainer");

}  // namespace
}  // namespace spnas
