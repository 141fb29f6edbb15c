// A two-step pipeline (random search, then training of the best records) with test plugins:
// records, failure handling, refusal to overwrite, and resume after SIGKILL.
#include "spnas/pipeline/pipeline.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ATen/ATen.h>
#include <torch/version.h>

#include "spnas/core/files.h"
#include "spnas/core/record_store.h"
#include "spnas/core/run_lock.h"
#include "spnas/core/run_log.h"
#include "spnas/core/version.h"
#include "tests/test_plugins.h"

// The raw-string configs below carry the line:column positions the tests assert.
// clang-format off
namespace spnas {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPipeline[] = R"pb(
general { seed: 11 }
step {
  name: "search"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm {
    type: "RandomSearch"
    options { [type.googleapis.com/spnas.RandomSearchOptions] { max_sample: 6 } }
  }
  search_space {
    type: "HyperparameterSpace"
    options {
      [type.googleapis.com/spnas.HyperparameterSpaceOptions] {
        hyperparameter {
          key: "network.hidden" type: CATEGORY
          range: "8" range: "16" range: "24" range: "7" range: "32" range: "40"
        }
      }
    }
  }
  model { type: "TinyMlp" options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 1 } } }
  trainer {
    type: "AnalyticTrainer"
    options { [type.googleapis.com/spnas.testing.AnalyticTrainerOptions] { best_hidden: 24 fail_hidden: 7 } }
  }
}
step {
  name: "train"
  pipe_step {
    type: "TrainPipeStep"
    options { [type.googleapis.com/spnas.TrainPipeStepOptions] { top_k: 2 rank_by: "score" } }
  }
  trainer { ref: "search.trainer" }
  models_folder: "search"
}
)pb";

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(root ? root : "/tmp") + "/" + name;
  return dir;
}

LoadedConfig Load(const std::string& base, const std::string& text = kPipeline) {
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.local_base_path = base;
  StatusOr<LoadedConfig> config = ParseConfig(text, "pipeline.textproto", options, &errors);
  if (config.ok()) ValidatePipeline(*config, &errors);
  EXPECT_TRUE(errors.empty()) << errors.ToStatus();
  return std::move(config).value();
}

Status RunAt(const std::string& base, bool resume, bool overwrite = false) {
  RunOptions options;
  options.resume = resume;
  options.overwrite = overwrite;
  return RunPipeline(Load(base), options);
}

// Trial id -> (hidden, status, score) of a records folder.
std::map<int, std::string> Summary(const std::string& folder) {
  std::map<int, std::string> out;
  auto trials = RecordStore(folder).LoadAll();
  EXPECT_TRUE(trials.ok()) << trials.status();
  for (const Trial& t : *trials) {
    const auto& m = t.record.metrics();
    out[t.record.id()] = StrCat(t.record.hyperparameters().at("network.hidden"), " ",
                                TrialStatus_Name(t.record.status()), " ",
                                m.count("score") ? m.at("score") : 999.0);
  }
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(PipelineTest, RunsBothStepsAndWritesRecords) {
  const std::string base = TempDir("full");
  fs::remove_all(base);
  ASSERT_TRUE(RunAt(base, false).ok());
  const std::string search = base + "/output/search";

  auto trials = Summary(search + "/trials");
  ASSERT_EQ(trials.size(), 6u);
  std::multiset<std::string> hidden;
  for (const auto& [id, s] : trials) hidden.insert(s.substr(0, s.find(' ')));
  EXPECT_EQ(hidden, (std::multiset<std::string>{"16", "24", "32", "40", "7", "8"}));  // no duplicates

  // The failing candidate is recorded as failed with its message; the others finished.
  auto all = RecordStore(search + "/trials").LoadAll().value();
  int failed = 0;
  for (const Trial& t : all) {
    if (t.record.status() == FAILED) {
      ++failed;
      EXPECT_THAT(t.record.error(), HasSubstr("test failure for hidden=7"));
      EXPECT_FALSE(t.record.has_weights());
    } else {
      EXPECT_EQ(t.record.status(), FINISHED);
      EXPECT_TRUE(fs::exists(t.weights));
      EXPECT_EQ(t.desc.type(), "TinyMlp");
    }
  }
  EXPECT_EQ(failed, 1);

  // Every record names what produced it; the config's fingerprint is the same for all of them
  // and changes with the config.
  const Provenance& provenance = all[0].record.provenance();
  EXPECT_EQ(provenance.spnas_version(), kSpnasVersion);
  EXPECT_EQ(provenance.libtorch_version(), TORCH_VERSION);
  EXPECT_EQ(provenance.device(), "cpu");
  EXPECT_GT(provenance.threads(), 0);
  EXPECT_FALSE(provenance.host().empty());
  EXPECT_THAT(provenance.config_fingerprint(), ::testing::MatchesRegex("[0-9a-f]{16}"));
  for (const Trial& t : all) EXPECT_EQ(t.record.provenance().config_fingerprint(), provenance.config_fingerprint());
  std::string changed = kPipeline;
  changed.replace(changed.find("seed: 11"), 8, "seed: 12");
  EXPECT_NE(Load(base, changed).Fingerprint(), provenance.config_fingerprint());
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.local_base_path = base;
  auto renamed = ParseConfig(kPipeline, "another_name.textproto", options, &errors);  // the file's name is not hashed
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->Fingerprint(), provenance.config_fingerprint());

  // The search publishes its finished trials; the train step trains the best two by score.
  EXPECT_EQ(Summary(search).size(), 5u);
  auto trained = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trained.size(), 2u);
  std::set<std::string> best;
  for (const Trial& t : trained) {
    best.insert(*ReadFile(t.weights));
    EXPECT_THAT(t.record.parent(), HasSubstr("search/"));
  }
  EXPECT_THAT(*best.begin() + *best.rbegin(), HasSubstr("output/search/model_"));

  EXPECT_THAT(*ReadFile(base + "/output/run.log"), HasSubstr("[search] step 1/2 (SearchPipeStep)"));
  for (const std::string step : {"search", "train"}) {
    for (const std::string file : {"config.textproto", "summary.csv", "step_status.json"}) {
      EXPECT_TRUE(fs::exists(base + "/output/" + step + "/" + file)) << step << "/" << file;
    }
  }
  EXPECT_THAT(*ReadFile(search + "/config.textproto"), HasSubstr("local_base_path: \"" + base + "\""));
  EXPECT_THAT(*ReadFile(search + "/trials/summary.csv"), HasSubstr("id,status,parent,model,params,score"));

  // An earlier run's output is never overwritten silently.
  Status again = RunAt(base, false);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("Pass --resume to continue it, --overwrite to delete it"));
  ASSERT_TRUE(RunAt(base, false, /*overwrite=*/true).ok());
  EXPECT_EQ(Summary(search + "/trials"), trials);  // same seed, same results
}

// A train step can pick records by id, and train them from scratch instead of their weights.
TEST_F(PipelineTest, TrainStepPicksRecordsByIdAndCanStartFromScratch) {
  const std::string base = TempDir("ids");
  fs::remove_all(base);
  std::string text = kPipeline;
  const std::string top = "top_k: 2 rank_by: \"score\"";
  text.replace(text.find(top), top.size(), "ids: [5, 0] from_scratch: true");
  ASSERT_TRUE(RunPipeline(Load(base, text), RunOptions()).ok());
  auto trained = RecordStore(base + "/output/train").LoadAll().value();
  ASSERT_EQ(trained.size(), 2u);
  for (const Trial& t : trained) {
    EXPECT_EQ(*ReadFile(t.weights), StrCat("weights of trial ", t.record.id(), " from ''\n"));
    EXPECT_EQ(t.record.parent(), StrCat("search/", t.record.id()));
  }
  EXPECT_EQ(trained[0].record.id(), 0);
  EXPECT_EQ(trained[1].record.id(), 5);

  fs::remove_all(base);
  text.replace(text.find("ids: [5, 0]"), 11, "ids: [99]");
  const Status missing = RunPipeline(Load(base, text), RunOptions());
  EXPECT_THAT(missing.message(), HasSubstr("ids: no finished record 99 in models_folder"));
}

// One run per folder: a second run (or --resume) is refused while the first holds the lock;
// a lock file left by a killed run is taken over, with a warning naming that run.
TEST_F(PipelineTest, ASecondRunOnAFolderInUseIsRefusedAtOnce) {
  const std::string base = TempDir("locked");
  fs::remove_all(base);
  {
    auto held = RunLock::Acquire(base);
    ASSERT_TRUE(held.ok()) << held.status();
    for (bool resume : {false, true}) {
      const Status second = RunAt(base, resume);
      EXPECT_EQ(second.code(), StatusCode::kFailedPrecondition);
      EXPECT_THAT(second.message(), HasSubstr("is in use by another spnas run (pid " + std::to_string(getpid())));
    }
    EXPECT_FALSE(fs::exists(base + "/output"));  // refused before touching anything
  }
  ASSERT_TRUE(WriteFileAtomic(base + "/.run.lock", "pid 12345 on elsewhere, started 2026-01-01 00:00:00\n").ok());
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(RunAt(base, false).ok());
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("(pid 12345 on elsewhere, started 2026-01-01 00:00:00) ended without releasing its lock"));
  EXPECT_EQ(*ReadFile(base + "/.run.lock"), "");  // released at the end
}

TEST_F(PipelineTest, ResumesAfterSigkillWithoutRedoingFinishedTrials) {
  const std::string reference = TempDir("reference");
  const std::string base = TempDir("killed");
  fs::remove_all(reference);
  fs::remove_all(base);
  ASSERT_TRUE(RunAt(reference, false).ok());

  EXPECT_EXIT(
      {
        setenv("SPNAS_TEST_KILL_AT_TRIAL", "3", 1);
        (void)RunAt(base, false);
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");

  const std::string trials_dir = base + "/output/search/trials";
  auto before = Summary(trials_dir);
  ASSERT_EQ(before.size(), 3u);  // trials 0, 1, 2 finished before the kill
  std::map<int, std::string> files_before;
  for (int id = 0; id < 3; ++id) files_before[id] = *ReadFile(RecordStore(trials_dir).PerformancePath(id));
  EXPECT_FALSE(fs::exists(base + "/output/search/step_status.json"));

  const int calls = testing::TrainCalls().load();
  ASSERT_TRUE(RunAt(base, /*resume=*/true).ok());
  EXPECT_EQ(testing::TrainCalls().load() - calls, 3 + 2);  // trials 3..5, then the train step's two

  for (int id = 0; id < 3; ++id) {
    EXPECT_EQ(*ReadFile(RecordStore(trials_dir).PerformancePath(id)), files_before[id]) << "trial " << id;
  }
  EXPECT_EQ(Summary(trials_dir), Summary(reference + "/output/search/trials"));
  EXPECT_EQ(Summary(base + "/output/train"), Summary(reference + "/output/train"));

  // Everything finished: resuming again runs nothing.
  const int calls_after = testing::TrainCalls().load();
  ASSERT_TRUE(RunAt(base, true).ok());
  EXPECT_EQ(testing::TrainCalls().load(), calls_after);
}

// Steps appended to a finished run's config run on --resume, and the finished ones are kept;
// a change to a step that ran is refused.
TEST_F(PipelineTest, ResumeRunsAppendedStepsAndRefusesAChangedOne) {
  const std::string base = TempDir("appended");
  fs::remove_all(base);
  const std::string all = kPipeline;
  const std::string first = all.substr(0, all.find("step {\n  name: \"train\""));
  RunOptions fresh, resume;
  resume.resume = true;
  ASSERT_TRUE(RunPipeline(Load(base, first), fresh).ok());
  EXPECT_FALSE(fs::exists(base + "/output/train"));
  const int calls = testing::TrainCalls().load();
  ASSERT_TRUE(RunPipeline(Load(base, all), resume).ok());
  EXPECT_EQ(testing::TrainCalls().load() - calls, 2);  // the train step's two, not the search again
  EXPECT_EQ(Summary(base + "/output/train").size(), 2u);

  std::string changed = all;
  changed.replace(changed.find("max_sample: 6"), 13, "max_sample: 5");
  const Status refused = RunPipeline(Load(base, changed), resume);
  EXPECT_THAT(refused.message(), HasSubstr("step 'search': the config differs from the one of the run being resumed"));
}

// A candidate that runs out of memory is recorded as FAILED with the allocator's message, and
// the search goes on.
TEST_F(PipelineTest, ACandidateOutOfMemoryIsRecordedAndTheSearchGoesOn) {
  const std::string base = TempDir("oom");
  fs::remove_all(base);
  std::string text = kPipeline;
  text.replace(text.find("fail_hidden: 7"), 14, "oom_hidden: 7");
  ASSERT_TRUE(RunPipeline(Load(base, text), RunOptions()).ok());
  auto trials = RecordStore(base + "/output/search/trials").LoadAll();
  ASSERT_TRUE(trials.ok()) << trials.status();
  ASSERT_EQ(trials->size(), 6u);
  int failed = 0;
  for (const Trial& t : *trials) {
    if (t.record.hyperparameters().at("network.hidden") != "7") {
      EXPECT_EQ(t.record.status(), FINISHED);
      continue;
    }
    ++failed;
    EXPECT_EQ(t.record.status(), FAILED);
    EXPECT_THAT(t.record.error(), HasSubstr("CUDA out of memory. Tried to allocate 20.00 GiB"));
  }
  EXPECT_EQ(failed, 1);
}

// Disk full: the run stops with a clear error, leaves no partial file and no half record, and
// --resume after space is freed finishes with the same records as a run that never stopped.
TEST_F(PipelineTest, AFullDiskStopsTheRunAndResumeFinishesIt) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string reference = TempDir("disk_reference");
  const std::string base = TempDir("disk_full");
  fs::remove_all(reference);
  fs::remove_all(base);
  fs::create_directories(base);
  // 64 KiB of weights per trial: the 6 search trials need about 400 KiB.
  std::string text = kPipeline;
  text.replace(text.find("fail_hidden: 7"), 14, "fail_hidden: 7 weights_bytes: 65536");
  ASSERT_TRUE(RunPipeline(Load(reference, text), RunOptions()).ok());
  if (::mount("tmpfs", base.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{base};

  const Status full = RunPipeline(Load(base, text), RunOptions());
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted) << full;
  EXPECT_THAT(full.message(), HasSubstr("No space left on device"));
  EXPECT_THAT(full.message(), HasSubstr("--resume"));
  const std::string trials_dir = base + "/output/search/trials";
  const auto written = Summary(trials_dir);  // every record there reads whole
  EXPECT_GE(written.size(), 1u);
  EXPECT_LT(written.size(), 6u);
  for (const auto& entry : fs::recursive_directory_iterator(base)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << "partial file left: " << entry.path();
    if (name.rfind("desc_", 0) == 0 || name.rfind("model_", 0) == 0) {
      const std::string id = name.substr(name.find('_') + 1, name.find('.') - name.find('_') - 1);
      EXPECT_TRUE(fs::exists(entry.path().parent_path() / ("performance_" + id + ".json")))
          << "half record left: " << entry.path();
    }
  }

  ASSERT_EQ(::mount("tmpfs", base.c_str(), "tmpfs", MS_REMOUNT, "size=8m"), 0) << std::strerror(errno);
  RunOptions resume;
  resume.resume = true;
  ASSERT_TRUE(RunPipeline(Load(base, text), resume).ok());
  EXPECT_EQ(Summary(trials_dir), Summary(reference + "/output/search/trials"));
  EXPECT_EQ(Summary(base + "/output/train"), Summary(reference + "/output/train"));
}

// A damaged record in a resumed folder is an error naming the file; files that are not records
// (notes, editor backups, an id too long to be ours) are left alone.
TEST_F(PipelineTest, ResumeNamesADamagedRecordAndIgnoresForeignFiles) {
  const std::string base = TempDir("damaged");
  fs::remove_all(base);
  ASSERT_TRUE(RunAt(base, false).ok());
  const std::string trials_dir = base + "/output/search/trials";
  for (const char* name : {"notes.txt", "performance_1.json~", "performance_99999999999.json", "performance_x.json"}) {
    ASSERT_TRUE(WriteFileAtomic(trials_dir + "/" + name, "not a record").ok());
  }
  EXPECT_EQ(Summary(trials_dir).size(), 6u);
  ASSERT_TRUE(RunAt(base, true).ok());

  const std::string record = RecordStore(trials_dir).PerformancePath(2);
  const std::string text = *ReadFile(record);
  ASSERT_TRUE(WriteFileAtomic(record, text.substr(0, text.size() / 2)).ok());
  fs::remove(base + "/output/search/step_status.json");  // the search step must read its records again
  const Status damaged = RunAt(base, true);
  EXPECT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.message(), HasSubstr(record));
}

// LibTorch appends a C++ backtrace to its errors: the user reads the message, the run's log
// file keeps the whole text.
TEST_F(PipelineTest, LibTorchBacktracesGoToTheRunLogNotToTheMessage) {
  const std::string path = TempDir("backtrace") + "/run.log";
  std::string message;
  {
    RunLogFile log(path);
    try {
      at::zeros({2, 3}).view({7});
    } catch (const c10::Error& e) {
      ASSERT_THAT(e.what(), HasSubstr("\nException raised from "));
      message = ExceptionMessage(e);
    }
  }
  EXPECT_THAT(message, HasSubstr("shape '[7]' is invalid for input of size 6"));
  EXPECT_THAT(message, Not(HasSubstr("Exception raised from")));
  const std::string log = *ReadFile(path);
  EXPECT_THAT(log, HasSubstr("shape '[7]' is invalid for input of size 6\nException raised from "));
  // Once the log file is closed, it is left alone.
  try {
    at::zeros({2}).view({5});
  } catch (const c10::Error& e) {
    EXPECT_THAT(ExceptionMessage(e), HasSubstr("shape '[5]' is invalid"));
  }
  EXPECT_EQ(*ReadFile(path), log);
}

TEST_F(PipelineTest, EmptyInputFolderNamesTheStepThatShouldHaveFilledIt) {
  const std::string base = TempDir("empty_input");
  fs::remove_all(base);
  fs::create_directories(base + "/output/search");
  std::string text = kPipeline;
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.local_base_path = base;
  // Only the train step, reading a folder that exists but holds nothing.
  text = text.substr(text.find("step {\n  name: \"train\""));
  text.replace(text.find("ref: \"search.trainer\""), 21, "type: \"AnalyticTrainer\"");
  text.replace(text.find("models_folder: \"search\""), 23, "models_folder: \"{local_base_path}/output/search\"");
  StatusOr<LoadedConfig> config = ParseConfig(text, "train_only.textproto", options, &errors);
  ASSERT_TRUE(config.ok() && errors.empty()) << errors.ToStatus();
  ValidatePipeline(*config, &errors);
  ASSERT_TRUE(errors.empty()) << errors.ToStatus();
  Status status = RunPipeline(*config, RunOptions());
  EXPECT_THAT(status.message(), HasSubstr("step 'train' failed: step 'train': models_folder '" + base +
                                          "/output/search' holds no finished records"));
  EXPECT_THAT(status.message(), HasSubstr("step 'search' should have written them"));
}

}  // namespace
}  // namespace spnas
