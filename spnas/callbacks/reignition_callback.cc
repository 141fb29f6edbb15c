// ReignitionCallback (docs/sp_nas.md, reignition): the detector's backbone is trained as an image classifier
// (a SerialClassificationNet initialised from it), then the detector is handed back with the
// reignited backbone, counting the reignition in its description (at most max_reignitions).

#include "spnas/callbacks/callback_options.pb.h"
#include "spnas/core/logging.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/inheritance.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/models/searchable.h"
#include "spnas/trainers/callback.h"

namespace spnas {
namespace {

class ReignitionCallback : public Callback {
 public:
  using Options = ReignitionCallbackOptions;
  explicit ReignitionCallback(const Options& o) : options_(o) {}

  static void SetDefaults(Options* o) {
    if (!o->has_max_reignitions()) o->set_max_reignitions(2);
    if (!o->has_train_data()) o->mutable_train_data()->CopyFrom(FashionMnist("train"));
    if (!o->has_val_data()) o->mutable_val_data()->CopyFrom(FashionMnist("test"));
  }
  static Status ValidateOptions(const Options& o) {
    if (o.max_reignitions() < 0) return InvalidArgumentError("max_reignitions must be >= 0");
    return Status::Ok();
  }
  int Priority() const override { return 10; }  // before anything else sees the model

  Status BeforeTrain(TrainContext& ctx) override {
    StatusOr<std::unique_ptr<SearchableModel>> detector = Searchable(ctx.model_desc);
    if (!detector.ok()) return Annotate(detector.status(), "ReignitionCallback");
    SPNAS_ASSIGN_OR_RETURN(const int reignitions, (*detector)->Reignitions());
    SPNAS_ASSIGN_OR_RETURN(PluginConfig backbone, (*detector)->Backbone());
    if (reignitions >= options_.max_reignitions()) {
      LOG(INFO) << "reignition skipped for trial " << ctx.job->trial_id << ": its lineage was reignited " << reignitions
                << " times (max_reignitions " << options_.max_reignitions() << ")";
      ctx.notes["reignition"] = "skipped: limit reached";
      ctx.skip_training = true;
      return Status::Ok();
    }
    detector_ = ctx.model;
    detector_desc_ = ctx.model_desc;
    SPNAS_ASSIGN_OR_RETURN(ctx.train_data, LoadDatasetCached(options_.train_data()));
    SPNAS_ASSIGN_OR_RETURN(ctx.val_data, LoadDatasetCached(options_.val_data()));

    // The classifier's own training: the detector's frozen BatchNorm and stages do not carry over.
    SerialClassificationNetOptions classifier;
    *classifier.mutable_backbone() = FullyTrainableBackbone(backbone);
    classifier.set_num_classes(static_cast<int>(ctx.train_data->ClassNames().size()));
    PluginConfig desc;
    desc.set_type("SerialClassificationNet");
    desc.mutable_options()->PackFrom(classifier);
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ModelRegistry().Create(desc.type(), desc.options()));
    SPNAS_ASSIGN_OR_RETURN(InheritReport report,
                           InheritWeights(GetStateDict(*detector_), detector_desc_, desc, {}, *model));
    LOG(INFO) << "reignition of trial " << ctx.job->trial_id << ": classifier from the detector's backbone, "
              << report.Summary();
    ctx.model = std::shared_ptr<Model>(model.release());
    ctx.model_desc = desc;
    return Status::Ok();
  }

  Status AfterTrain(TrainContext& ctx) override {
    if (detector_ == nullptr) return Status::Ok();
    SPNAS_ASSIGN_OR_RETURN(InheritReport report,
                           InheritWeights(GetStateDict(*ctx.model), ctx.model_desc, detector_desc_, {}, *detector_));
    LOG(INFO) << "reignition of trial " << ctx.job->trial_id << ": backbone handed back to the detector, "
              << report.inherited.size() << " tensors";
    SPNAS_ASSIGN_OR_RETURN(std::unique_ptr<SearchableModel> detector, Searchable(detector_desc_));
    SPNAS_ASSIGN_OR_RETURN(const int reignitions, detector->Reignitions());
    SPNAS_RETURN_IF_ERROR(detector->SetReignitions(reignitions + 1));
    detector_desc_ = detector->Description();
    auto accuracy = ctx.metrics.find("accuracy");
    if (accuracy != ctx.metrics.end()) {
      ctx.metrics["reignition_accuracy"] = accuracy->second;
      ctx.metrics.erase(accuracy);
    }
    ctx.notes["reignitions"] = std::to_string(reignitions + 1);
    ctx.model = detector_;
    ctx.model_desc = detector_desc_;
    return Status::Ok();
  }

 private:
  static PluginConfig FashionMnist(const std::string& split) {
    FashionMnistOptions o;
    o.set_split(split);
    PluginConfig c;
    c.set_type("FashionMnist");
    c.mutable_options()->PackFrom(o);
    return c;
  }

  Options options_;
  std::shared_ptr<Model> detector_;
  PluginConfig detector_desc_;
};

SPNAS_REGISTER_PLUGIN(CallbackRegistry, ReignitionCallback);

}  // namespace
}  // namespace spnas
