// The Trainer on tiny real data: a detector and a classifier train, are measured and saved in
// a file Python's torch.load reads; a diverging run is recorded as DIVERGED; reignition hands a
// detector back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <ATen/record_function.h>
#include <torch/nn/utils/clip_grad.h>
#include <nlohmann/json.hpp>

#include "spnas/core/logging.h"
#include "spnas/core/record_store.h"
#include "spnas/models/checkpoint.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/pipeline/pipeline.h"
#include "spnas/trainers/optimizer.h"

// The raw-string configs below carry the line:column positions the tests assert.
// clang-format off
namespace spnas {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDetector[] = R"pb(
shared {
  name: "detector"
  plugin {
    type: "FasterRCNN"
    options {
      [type.googleapis.com/spnas.FasterRCNNOptions] {
        backbone { type: "SerialBackbone" options { [type.googleapis.com/spnas.SerialBackboneOptions] { code: "11-21-21-21" block: BASIC stem_width: 8 } } }
        neck { type: "FPN" options { [type.googleapis.com/spnas.FPNOptions] { out_channels: 16 } } }
        box_head { type: "TwoMLPHead" options { [type.googleapis.com/spnas.TwoMLPHeadOptions] { representation_size: 32 } } }
        num_classes: 11 min_size: 64 max_size: 64
        anchor_sizes: [16, 32, 64, 128, 256]
        rpn_pre_nms_top_n_train: 100 rpn_post_nms_top_n_train: 50 rpn_pre_nms_top_n_test: 50 rpn_post_nms_top_n_test: 30
        box_batch_size_per_image: 32 rpn_batch_size_per_image: 32
      }
    }
  }
}
shared { name: "train" plugin { type: "FashionDet" options { [type.googleapis.com/spnas.FashionDetOptions] { split: "train" num_images: 8 canvas_size: 64 max_item_size: 40 } } } }
shared { name: "val" plugin { type: "FashionDet" options { [type.googleapis.com/spnas.FashionDetOptions] { split: "val" num_images: 4 canvas_size: 64 max_item_size: 40 } } } }
)pb";

std::string Base(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(dir);
  return dir;
}

Status RunText(const std::string& text, const std::string& base, bool resume = false) {
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.local_base_path = base;
  auto config = ParseConfig(text, "trainer_test.textproto", options, &errors);
  if (config.ok()) ValidatePipeline(*config, &errors);
  if (!errors.empty()) return errors.ToStatus();
  RunOptions run;
  run.resume = resume;
  return RunPipeline(*config, run);
}

std::string TrainStep(const std::string& trainer_options) {
  return std::string(kDetector) + R"pb(
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  model { ref: "shared.detector" }
  trainer { type: "Trainer" options { [type.googleapis.com/spnas.TrainerOptions] { )pb" +
         trainer_options + R"pb( } } }
  train_data { ref: "shared.train" }
  val_data { ref: "shared.val" }
  metric { type: "COCO" }
  metric { type: "VOC" }
})pb";
}

TEST(TrainerTest, DetectorTrainsIsMeasuredAndSavedForPython) {
  const std::string base = Base("detector");
  ASSERT_TRUE(RunText(TrainStep("epochs: 1 batch_size: 4 measure_latency: true"), base).ok());
  auto trials = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  const TrialRecord& r = trials[0].record;
  EXPECT_EQ(r.status(), FINISHED) << r.error();
  for (const char* key : {"mAP", "AP50", "AP75", "VOC_AP50", "params", "flops", "latency_ms", "memory_mb"}) {
    EXPECT_TRUE(r.metrics().count(key)) << key;
  }
  EXPECT_GT(r.metrics().at("params"), 1e5);
  EXPECT_GT(r.metrics().at("flops"), 1e6);

  // The weights load in Python as a state dict with the same tensors.
  const StateDict ours = LoadWeights(trials[0].weights).value();
  const double sum = ours.at("backbone.body.layer1.0.conv1.weight").sum().item<double>();
  const std::string script =
      "import sys, torch\n"
      "sd = torch.load(sys.argv[1])\n"
      "assert isinstance(sd, dict) and 'roi_heads.box_predictor.cls_score.weight' in sd\n"
      "s = float(sd['backbone.body.layer1.0.conv1.weight'].sum())\n"
      "sys.exit(0 if abs(s - float(sys.argv[2])) < 1e-4 else 1)\n";
  const std::string script_path = base + "/check.py";
  std::ofstream(script_path) << script;
  // The project's Python environment (its torch), as Bazel passes it.
  const char* python = std::getenv("SPNAS_PYTHON");
  ASSERT_NE(python, nullptr) << "SPNAS_PYTHON is not set (run the test with bazel test)";
  const std::string command = std::string(python) + " " + script_path + " " + trials[0].weights + " " + std::to_string(sum);
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(TrainerTest, CheckpointsAndEarlyStopping) {
  const std::string base = Base("callbacks");
  std::string text = TrainStep("epochs: 6 batch_size: 4");
  text.replace(text.rfind("}"), 1, R"pb(
  callback { type: "MetricsEvaluator" }
  callback { type: "ModelCheckpoint" options { [type.googleapis.com/spnas.ModelCheckpointOptions] { monitor: "mAP" } } }
  callback { type: "EarlyStopping" options { [type.googleapis.com/spnas.EarlyStoppingOptions] { monitor: "mAP" patience: 1 min_delta: 100 } } }
})pb");
  ASSERT_TRUE(RunText(text, base).ok());
  auto trials = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_FALSE(fs::exists(base + "/output/train/model_0.last.pth"));  // only while the trial runs
  EXPECT_TRUE(fs::exists(base + "/output/train/model_0.best.pth"));
  // No improvement of 100 mAP points after the first evaluation: training stops at epoch 2.
  EXPECT_EQ(trials[0].record.notes().at("early_stopped_epoch"), "2");
}

TEST(TrainerTest, NonFiniteLossIsRecordedAsDiverged) {
  const std::string base = Base("diverged");
  ASSERT_TRUE(RunText(TrainStep("epochs: 2 batch_size: 4 optimizer { type: \"SGD\" options { [type.googleapis.com/spnas.SGDOptions] { lr: 1e12 } } }"),
                  base)
                  .ok());
  auto trials = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].record.status(), DIVERGED);
  EXPECT_THAT(trials[0].record.error(), HasSubstr("non-finite loss"));
  EXPECT_THAT(trials[0].record.error(), HasSubstr("at iteration"));
  EXPECT_FALSE(trials[0].record.has_weights());
}

TEST(TrainerTest, ProgressEveryLogEveryIterations) {
  const std::string base = Base("log_every");
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(RunText(TrainStep("epochs: 2 batch_size: 2 max_iterations: 7 log_every: 3"), base).ok());
  const std::string log = ::testing::internal::GetCapturedStderr();
  for (const char* line : {"iteration 3/7 ", "iteration 6/7 ", "iteration 7/7 "}) EXPECT_THAT(log, HasSubstr(line));
  for (const char* line : {"iteration 1/7 ", "iteration 2/7 ", "iteration 4/7 "}) EXPECT_THAT(log, Not(HasSubstr(line)));
  // The same points, and each evaluation, in metrics_<id>.jsonl.
  std::ifstream jsonl(base + "/output/train/metrics_0.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(jsonl, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(lines[i], HasSubstr(StrCat("\"iteration\":", i == 2 ? 7 : 3 * (i + 1))));
    EXPECT_THAT(lines[i], HasSubstr("\"loss_classifier\":"));
    EXPECT_THAT(lines[i], HasSubstr("\"lr\":"));
  }
  EXPECT_THAT(lines[3], HasSubstr("\"mAP\":"));
  EXPECT_THAT(lines[3], HasSubstr("\"iteration\":7"));
}

// Kills its process (SIGKILL, as the OOM killer or a preempted node would) when a progress line
// containing `line` is logged: in the middle of the training loop, at a known iteration.
class KillAtLogLine : public google::LogSink {
 public:
  explicit KillAtLogLine(std::string line) : line_(std::move(line)) {}
  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&, const char* message,
            size_t size) override {
    if (std::string(message, size).find(line_) != std::string::npos) ::kill(::getpid(), SIGKILL);
  }

 private:
  std::string line_;
};

bool SameWeights(const std::string& a, const std::string& b) {
  const StateDict x = LoadWeights(a).value(), y = LoadWeights(b).value();
  if (x.size() != y.size()) return false;
  for (const auto& [name, tensor] : x) {
    if (!y.count(name) || !at::equal(tensor, y.at(name))) return false;
  }
  return true;
}

// A trial killed in the middle of an epoch and resumed ends with the same weights, bit for bit,
// as one that ran through; its checkpoint loads in Python. An unusable checkpoint is reported
// and the trial starts over.
TEST(TrainerTest, KilledMidEpochAndResumedEndsWithTheSameWeights) {
  // 8 images in batches of 2: 4 iterations an epoch, 8 in all; a checkpoint every 3 iterations
  // and at each epoch end (iterations 3, 4, 6, 8).
  const std::string text =
      TrainStep("epochs: 2 batch_size: 2 checkpoint_every: 3 log_every: 1 "
                "lr_schedule { type: \"CosineLR\" } optimizer { type: \"SGD\" options { [type.googleapis.com/spnas.SGDOptions] { lr: 0.01 } } }");
  const std::string base = Base("resume_killed");
  // First, as the death test's child re-runs this test's body up to here: killed at iteration 7,
  // after the checkpoint of iteration 6.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        KillAtLogLine killer("iteration 7/8 ");
        google::AddLogSink(&killer);
        (void)RunText(text, base);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  const std::string checkpoint = base + "/output/train/model_0.last.pth";
  ASSERT_TRUE(fs::exists(checkpoint));
  ASSERT_FALSE(fs::exists(base + "/output/train/performance_0.json"));
  // A copy to break below; its resolved config names its own folder.
  const std::string broken = Base("resume_broken");
  fs::copy(base, broken, fs::copy_options::recursive);
  const std::string copied_config = broken + "/output/train/config.textproto";
  std::ifstream config_in(copied_config);
  std::string config((std::istreambuf_iterator<char>(config_in)), std::istreambuf_iterator<char>());
  for (size_t at = config.find(base); at != std::string::npos; at = config.find(base, at)) config.replace(at, base.size(), broken);
  std::ofstream(copied_config) << config;

  // The checkpoint in Python: the model as a state dict with torchvision's names.
  const std::string script = base + "/check_checkpoint.py";
  std::ofstream(script) << "import sys, torch\n"
                           "c = torch.load(sys.argv[1])\n"
                           "assert {'model', 'optimizer', 'trainer'} <= set(c), set(c)\n"
                           "assert 'roi_heads.box_predictor.cls_score.weight' in c['model']\n"
                           "assert int(c['trainer']['iteration']) == 6 and int(c['trainer']['epoch']) == 1\n"
                           "assert '0.momentum_buffer' in c['optimizer']\n";
  const std::string command = std::string(std::getenv("SPNAS_PYTHON")) + " " + script + " " + checkpoint;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;

  const std::string reference = Base("resume_reference");
  ASSERT_TRUE(RunText(text, reference).ok());
  const Status resumed = RunText(text, base, /*resume=*/true);
  ASSERT_TRUE(resumed.ok()) << resumed.ToString();
  auto trials = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].record.notes().at("resumed_at_iteration"), "6");
  EXPECT_TRUE(SameWeights(trials[0].weights, reference + "/output/train/model_0.pth"));
  EXPECT_FALSE(fs::exists(checkpoint));  // the trial is recorded: nothing to resume
  // Every log point once, as in the uninterrupted run.
  std::ifstream jsonl(base + "/output/train/metrics_0.jsonl"), reference_jsonl(reference + "/output/train/metrics_0.jsonl");
  std::vector<int> iterations, reference_iterations;
  for (std::string line; std::getline(jsonl, line);) iterations.push_back(nlohmann::json::parse(line)["iteration"]);
  for (std::string line; std::getline(reference_jsonl, line);) reference_iterations.push_back(nlohmann::json::parse(line)["iteration"]);
  EXPECT_EQ(iterations, reference_iterations);

  // A truncated checkpoint: the trial starts over, and still ends as the reference.
  const std::string truncated = broken + "/output/train/model_0.last.pth";
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  ::testing::internal::CaptureStderr();
  const Status started_over = RunText(text, broken, /*resume=*/true);
  ASSERT_TRUE(started_over.ok()) << started_over.ToString();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("trial 0 starts over: " + truncated + " cannot be resumed from:"));
  trials = RecordStore(broken + "/output/train").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_FALSE(trials[0].record.notes().count("resumed_at_iteration"));
  EXPECT_TRUE(SameWeights(trials[0].weights, reference + "/output/train/model_0.pth"));
}

// A resumed folder whose weights file was replaced by another model's: the trial that starts
// from it fails, naming the file, instead of training from a silent fresh initialisation.
TEST(TrainerTest, WeightsOfAnotherModelInAResumedFolderAreNamed) {
  const std::string base = Base("foreign_weights");
  const std::string text = TrainStep("epochs: 1 batch_size: 4") + R"pb(
step {
  name: "again"
  pipe_step { type: "TrainPipeStep" }
  trainer { ref: "train.trainer" }
  train_data { ref: "shared.train" }
  models_folder: "train"
})pb";
  ASSERT_TRUE(RunText(text, base).ok());
  const std::string weights = base + "/output/train/model_0.pth";
  ASSERT_TRUE(SaveWeights(weights, {{"backbone.body.conv1.weight", at::zeros({3, 3})}}).ok());
  fs::remove_all(base + "/output/again");
  ASSERT_TRUE(RunText(text, base, /*resume=*/true).ok());
  auto trials = RecordStore(base + "/output/again").LoadAll().value();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].record.status(), FAILED);
  EXPECT_THAT(trials[0].record.error(), HasSubstr("'" + weights + "' does not hold the weights of this model"));
}

// A search step's pretrained_model_file holds the step's model; each candidate the search space
// makes from it (here with other block counts) starts from the tensors that fit.
TEST(TrainerTest, SearchCandidatesStartFromTheTensorsOfThePretrainedFileThatFit) {
  const std::string base = Base("search_pretrained");
  const std::string text = TrainStep("epochs: 1 batch_size: 4") + R"pb(
step {
  name: "random"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm { type: "RandomSearch" options { [type.googleapis.com/spnas.RandomSearchOptions] { max_sample: 3 } } }
  search_space {
    type: "HyperparameterSpace"
    options {
      [type.googleapis.com/spnas.HyperparameterSpaceOptions] {
        hyperparameter { key: "network.backbone.code" type: CATEGORY range: ["111-21-21-21", "11-21-2111-21", "11-21-21-21-1"] }
      }
    }
  }
  model { ref: "shared.detector" }
  pretrained_model_file: "{local_base_path}/output/train/model_0.pth"
  trainer { ref: "train.trainer" }
  train_data { ref: "shared.train" }
  val_data { ref: "shared.val" }
})pb";
  ASSERT_TRUE(RunText(text, base).ok());
  auto trials = RecordStore(base + "/output/random/trials").LoadAll().value();
  ASSERT_EQ(trials.size(), 3u);
  for (const auto& trial : trials) EXPECT_EQ(trial.record.status(), FINISHED) << trial.record.error();
}

// equal_training: every serial candidate, whatever its generation, starts from the input
// record's weights through its lineage's edits, and records that record as its parent.
TEST(TrainerTest, AnEqualTrainingSerialSearchStartsEveryCandidateFromTheInputRecord) {
  const std::string base = Base("equal_training");
  const std::string text = TrainStep("epochs: 1 batch_size: 4") + R"pb(
step {
  name: "serial"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm {
    type: "SpNasS"
    options { [type.googleapis.com/spnas.SpNasSOptions] { max_sample: 6 num_mutate: 1 max_optimal: 1 expend_ratio: 0 add_stage_ratio: 0 objective_keys: ["params"] equal_training: true } }
  }
  trainer { ref: "train.trainer" }
  train_data { ref: "shared.train" }
  val_data { ref: "shared.val" }
  models_folder: "train"
})pb";
  ASSERT_TRUE(RunText(text, base).ok());
  auto trials = RecordStore(base + "/output/serial/trials").LoadAll().value();
  ASSERT_EQ(trials.size(), 6u);
  size_t most_edits = 0;
  for (const auto& trial : trials) {
    EXPECT_EQ(trial.record.status(), FINISHED) << trial.record.error();
    EXPECT_EQ(trial.record.parent(), "train/0");
    most_edits = std::max<size_t>(most_edits, trial.record.mutations_size());
  }
  EXPECT_EQ(trials[0].record.mutations_size(), 0);
  EXPECT_GE(most_edits, 2u);  // a second generation, inherited from the input through both edits
}

// float16 needs CUDA: refused by validation, before anything runs, naming the field.
TEST(TrainerTest, Float16MixedPrecisionOnTheCpuIsAConfigError) {
  const std::string base = Base("mixed_precision");
  const Status status = RunText(TrainStep("epochs: 1 batch_size: 4 mixed_precision: FLOAT16"), base);
  EXPECT_THAT(status.message(), HasSubstr("trainer_test.textproto:26:108: mixed_precision FLOAT16 needs a CUDA device"));
  EXPECT_FALSE(fs::exists(base + "/output/train"));
}

// The losses of each logged iteration of a finished run's metrics_0.jsonl.
std::vector<nlohmann::json> LoggedLosses(const std::string& base) {
  std::vector<nlohmann::json> lines;
  std::ifstream jsonl(base + "/output/train/metrics_0.jsonl");
  for (std::string line; std::getline(jsonl, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) lines.push_back(j);
  }
  return lines;
}

// Mixed precision on the CPU: the detector trains under bfloat16 autocast, its losses finite
// and close to float32's at every step.
TEST(TrainerTest, Bfloat16MixedPrecisionTrainsTheDetectorOnTheCpu) {
  std::map<std::string, std::vector<nlohmann::json>> runs;
  for (const char* precision : {"FLOAT32", "BFLOAT16"}) {
    const std::string base = Base(std::string("precision_") + precision);
    const Status status = RunText(
        TrainStep(StrCat("epochs: 1 batch_size: 2 max_iterations: 3 log_every: 1 mixed_precision: ", precision)), base);
    ASSERT_TRUE(status.ok()) << status;
    auto trials = RecordStore(base + "/output/train").LoadAll().value();
    ASSERT_EQ(trials.size(), 1u);
    EXPECT_EQ(trials[0].record.status(), FINISHED) << trials[0].record.error();
    runs[precision] = LoggedLosses(base);
    ASSERT_EQ(runs[precision].size(), 3u);
  }
  for (size_t i = 0; i < 3; ++i) {
    for (const char* name : {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss"}) {
      SCOPED_TRACE(StrCat("iteration ", i + 1, " ", name));
      const double f32 = runs["FLOAT32"][i][name], bf16 = runs["BFLOAT16"][i][name];
      EXPECT_TRUE(std::isfinite(bf16));
      // bfloat16 keeps 8 significant bits. From the same weights (iteration 1) the losses agree
      // to about 1%. After that the proposals near a threshold (top-k, NMS, IoU) differ, so the
      // RoI heads train on other samples and loss_classifier drifts (13% at iteration 3).
      const double tolerance = i == 0 ? 0.02 : 0.25;
      EXPECT_NEAR(bf16, f32, tolerance * std::abs(f32) + 0.005);
    }
  }
}

// The operators of this thread that make a GPU's host wait for it, counted while alive: scalar
// reads (.item(), also of host tensors) and the ops whose output size is data (nonzero, which
// where() and boolean indexing run, and unique).
class SyncCounter {
 public:
  SyncCounter() {
    counts_ = &counts;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&Count).scopes({at::RecordScope::FUNCTION}));
  }
  ~SyncCounter() {
    at::removeCallback(handle_);
    counts_ = nullptr;
  }
  std::map<std::string, int64_t> counts;

 private:
  static std::unique_ptr<at::ObserverContext> Count(const at::RecordFunction& fn) {
    const std::string name = fn.name();
    if (counts_ != nullptr && (name == "aten::_local_scalar_dense" || name == "aten::nonzero" ||
                               name == "aten::_unique2" || name == "aten::masked_select")) {
      ++(*counts_)[name];
    }
    return nullptr;
  }
  static thread_local std::map<std::string, int64_t>* counts_;
  at::CallbackHandle handle_;
};
thread_local std::map<std::string, int64_t>* SyncCounter::counts_ = nullptr;

// grad_clip_norm scales the gradients as torch's clip_grad_norm_ does, without reading the norm
// back to the host.
TEST(TrainerTest, ClipGradNormScalesAsTorchDoes) {
  for (double max_norm : {0.5, 1e6}) {
    SCOPED_TRACE(max_norm);
    std::vector<at::Tensor> ours, theirs;
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{3, 4}, {7}, {2, 2, 2}}) {
      at::Tensor p = at::zeros(shape).requires_grad_();
      p.mutable_grad() = at::randn(shape);
      at::Tensor q = at::zeros(shape).requires_grad_();
      q.mutable_grad() = p.grad().clone();
      ours.push_back(p);
      theirs.push_back(q);
    }
    ours.push_back(at::zeros({2}).requires_grad_());  // no gradient: left alone
    SyncCounter counter;
    ClipGradNorm(ours, max_norm);
    EXPECT_EQ(counter.counts["aten::_local_scalar_dense"], 0);
    torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    for (size_t i = 0; i < theirs.size(); ++i) {
      EXPECT_TRUE(at::allclose(ours[i].grad(), theirs[i].grad(), 1e-6, 1e-7)) << i;
    }
    EXPECT_FALSE(ours.back().grad().defined());
  }
}

// The host syncs of one training iteration of the detector (batch of 2), pinned: a new one
// fails here. Two runs that differ by two iterations between log points; the difference is
// theirs alone.
TEST(TrainerTest, ATrainingIterationSyncsWithTheHostAFixedNumberOfTimes) {
  auto run = [](int iterations) {
    std::string text = TrainStep(StrCat("epochs: 1 batch_size: 2 log_every: 100 max_iterations: ", iterations));
    const std::string val = "  val_data { ref: \"shared.val\" }\n";
    text.replace(text.find(val), val.size(), "");  // no evaluation
    SyncCounter counter;
    EXPECT_TRUE(RunText(text, Base(StrCat("syncs_", iterations))).ok());
    return counter.counts;
  };
  run(1);  // loads the dataset, which the process keeps for the runs below
  const std::map<std::string, int64_t> per_run[2] = {run(1), run(3)};
  std::map<std::string, int64_t> per_iteration;
  for (const auto& [name, count] : per_run[1]) {
    per_iteration[name] = (count - (per_run[0].count(name) ? per_run[0].at(name) : 0)) / 2;
  }
  // Scalar reads: per image, the transform's draw of a size (of a host tensor: no GPU sync);
  // per batch, the targets' check. nonzero: per image (2), in the RPN small boxes, the score
  // threshold, the matcher's low-quality matches, the sampler's positives and negatives (5);
  // in the RoI heads the sampler's two and the sampled proposals (3); per batch, the RPN's
  // sampled positives and negatives (2), the RoI heads' positives (1), one per RoI level (4).
  // torchvision's detector makes the same 23 nonzero calls and reads 2 scalars per image (the
  // size draw and the degenerate-box check), and its reference training loop reads the loss
  // every iteration, which spnas's does only where it logs.
  EXPECT_EQ(per_iteration["aten::_local_scalar_dense"], 3);
  EXPECT_EQ(per_iteration["aten::nonzero"], 23);
  EXPECT_EQ(per_iteration["aten::_unique2"], 0);
  EXPECT_EQ(per_iteration["aten::masked_select"], 0);
}

TEST(TrainerTest, ReignitionTrainsTheBackboneAsAClassifierAndHandsBackADetector) {
  const std::string base = Base("reignition");
  const std::string text = TrainStep("epochs: 1 batch_size: 4") + R"pb(
step {
  name: "reignition"
  pipe_step { type: "TrainPipeStep" }
  trainer { type: "Trainer" options { [type.googleapis.com/spnas.TrainerOptions] { epochs: 1 batch_size: 16 } } }
  callback {
    type: "ReignitionCallback"
    options {
      [type.googleapis.com/spnas.ReignitionCallbackOptions] {
        train_data { type: "FashionMnist" options { [type.googleapis.com/spnas.FashionMnistOptions] { split: "train" num_images: 64 } } }
        val_data { type: "FashionMnist" options { [type.googleapis.com/spnas.FashionMnistOptions] { split: "test" num_images: 32 } } }
        max_reignitions: 1
      }
    }
  }
  train_data { ref: "shared.train" }
  models_folder: "train"
}
step {
  name: "again"
  pipe_step { type: "TrainPipeStep" }
  trainer { ref: "reignition.trainer" }
  callback { ref: "reignition.callback" }
  train_data { ref: "shared.train" }
  models_folder: "reignition"
})pb";
  Status status = RunText(text, base);
  // callback is a repeated slot, so it cannot be referenced: the config says so.
  EXPECT_THAT(status.message(), HasSubstr("ref 'reignition.callback' names no shared plugin"));

  const std::string once = text.substr(0, text.find("step {\n  name: \"again\""));
  ASSERT_TRUE(RunText(once, base).ok());
  auto trained = RecordStore(base + "/output/train").LoadAll().value();
  auto reignited = RecordStore(base + "/output/reignition").LoadAll().value();
  ASSERT_EQ(reignited.size(), 1u);
  EXPECT_EQ(reignited[0].desc.type(), "FasterRCNN");
  FasterRCNNOptions detector;
  ASSERT_TRUE(reignited[0].desc.options().UnpackTo(&detector));
  EXPECT_EQ(detector.reignitions(), 1);
  EXPECT_TRUE(reignited[0].record.metrics().count("reignition_accuracy"));
  const StateDict before = LoadWeights(trained[0].weights).value();
  const StateDict after = LoadWeights(reignited[0].weights).value();
  EXPECT_EQ(before.size(), after.size());  // a detector's weights, not a classifier's
  EXPECT_FALSE(at::equal(before.at("backbone.body.layer4.1.conv2.weight"), after.at("backbone.body.layer4.1.conv2.weight")));
  EXPECT_TRUE(at::equal(before.at("rpn.head.cls_logits.weight"), after.at("rpn.head.cls_logits.weight")));
}

// A serial search whose front stalls: with params as the only objective and every mutation an
// expand, no mutant improves the front, so after one of them the seed is reignited.
TEST(TrainerTest, AStalledSerialSearchReignitesItsFrontAndTrainsTheResult) {
  const std::string base = Base("stalled_search");
  const std::string text = std::string(kDetector) + R"pb(
step {
  name: "search"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm {
    type: "SpNasS"
    options {
      [type.googleapis.com/spnas.SpNasSOptions] {
        max_sample: 3 num_mutate: 1 expend_ratio: 1 add_stage_ratio: 0 max_optimal: 1
        objective_keys: ["params"]
        stall_candidates: 1
        reignition {
          type: "ReignitionCallback"
          options {
            [type.googleapis.com/spnas.ReignitionCallbackOptions] {
              train_data { type: "FashionMnist" options { [type.googleapis.com/spnas.FashionMnistOptions] { split: "train" num_images: 64 } } }
              val_data { type: "FashionMnist" options { [type.googleapis.com/spnas.FashionMnistOptions] { split: "test" num_images: 32 } } }
            }
          }
        }
      }
    }
  }
  model { ref: "shared.detector" }
  trainer { type: "Trainer" options { [type.googleapis.com/spnas.TrainerOptions] { epochs: 1 batch_size: 4 } } }
  train_data { ref: "shared.train" }
  val_data { ref: "shared.val" }
})pb";
  ASSERT_TRUE(RunText(text, base).ok());
  auto trials = RecordStore(base + "/output/search/trials").LoadAll().value();
  ASSERT_EQ(trials.size(), 3u);
  EXPECT_EQ(MutationsText(trials[1].record.mutations(), "; ").rfind("expand:", 0), 0u);
  const Trial& reignited = trials[2];
  EXPECT_EQ(reignited.record.status(), FINISHED) << reignited.record.error();
  EXPECT_EQ(MutationsText(reignited.record.mutations(), "; "), "reignition");
  EXPECT_EQ(reignited.record.parent(), "search/0");
  for (const char* key : {"reignition_accuracy", "mAP", "params"}) EXPECT_TRUE(reignited.record.metrics().count(key)) << key;
  EXPECT_EQ(reignited.record.metrics().at("params"), trials[0].record.metrics().at("params"));
  FasterRCNNOptions detector;
  ASSERT_TRUE(reignited.desc.options().UnpackTo(&detector));
  EXPECT_EQ(detector.reignitions(), 1);
  // A detector's weights, trained after the classifier handed the backbone back.
  const StateDict seed = LoadWeights(trials[0].weights).value();
  const StateDict after = LoadWeights(reignited.weights).value();
  EXPECT_EQ(seed.size(), after.size());
  EXPECT_FALSE(at::equal(seed.at("backbone.body.layer4.1.conv2.weight"), after.at("backbone.body.layer4.1.conv2.weight")));
  EXPECT_FALSE(fs::exists(reignited.weights + ".pretrained"));
}

}  // namespace
}  // namespace spnas
