// The framework's own cost at scale: a random search of N candidates of a test model whose
// "training" sleeps a fixed time, then the report. Prints the wall time, the time spent in
// training, and the rest (proposals, records, Pareto front, report) as a share of the wall time.
//   bazel run //benchmarks:scale_benchmark -- --candidates=500 --train_ms=100 --out=/tmp/scale
// benchmarks/scale.sh runs it and times the report's rendering in headless Chromium.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "spnas/core/config.h"
#include "spnas/core/format.h"
#include "spnas/core/record_store.h"
#include "spnas/pipeline/pipeline.h"

DEFINE_int32(candidates, 500, "candidates the search evaluates");
DEFINE_int32(train_ms, 100, "milliseconds each candidate's training takes");
DEFINE_string(out, "/tmp/spnas_scale", "local_base_path of the run (deleted first)");

namespace spnas {
namespace {

constexpr char kConfig[] = R"pb(
  general { seed: 5 }
  step {
    name: "search"
    pipe_step { type: "SearchPipeStep" }
    search_algorithm {
      type: "RandomSearch"
      options {
        [type.googleapis.com/spnas.RandomSearchOptions] { max_sample: %d max_redraws: 20 }
      }
    }
    search_space {
      type: "HyperparameterSpace"
      options {
        [type.googleapis.com/spnas.HyperparameterSpaceOptions] {
          hyperparameter { key: "network.hidden" type: INT range: "1" range: "1000000" }
        }
      }
    }
    model {
      type: "TinyMlp"
      options {
        [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 1 }
      }
    }
    trainer {
      type: "AnalyticTrainer"
      options {
        [type.googleapis.com/spnas.testing.AnalyticTrainerOptions] { best_hidden: 500000 train_ms: %d }
      }
    }
  }
)pb";

int Run() {
  std::filesystem::remove_all(FLAGS_out);
  char text[sizeof(kConfig) + 64];
  std::snprintf(text, sizeof(text), kConfig, FLAGS_candidates, FLAGS_train_ms);
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.local_base_path = FLAGS_out;
  StatusOr<LoadedConfig> config = ParseConfig(text, "scale.textproto", options, &errors);
  if (config.ok()) ValidatePipeline(*config, &errors);
  if (!config.ok() || !errors.empty()) {
    std::fprintf(stderr, "%s\n", (config.ok() ? errors.ToStatus() : config.status()).ToString().c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  const Status status = RunPipeline(*config, RunOptions());
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  auto trials = RecordStore(FLAGS_out + "/output/search/trials").LoadAll();
  if (!trials.ok()) return 1;
  double training = 0;
  for (const Trial& t : *trials) training += t.record.train_seconds();
  const double framework = wall - training;
  std::printf(
      "%zu trials of %d ms: wall %.2f s, training %.2f s, framework %.2f s = %.2f%% of the wall time "
      "(%.2f ms per trial)\nreport: %s/output/report.html\n",
      trials->size(), FLAGS_train_ms, wall, training, framework, 100 * framework / wall,
      1000 * framework / trials->size(), FLAGS_out.c_str());
  return 0;
}

}  // namespace
}  // namespace spnas

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_minloglevel = 1;  // the per-trial lines would dominate what is measured
  FLAGS_logtostderr = true;
  return spnas::Run();
}
