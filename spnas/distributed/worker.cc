#include "spnas/distributed/worker.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "spnas/core/files.h"
#include "spnas/core/logging.h"
#include "spnas/core/record_store.h"
#include "spnas/core/step_context.h"
#include "spnas/core/step_folder.h"
#include "spnas/distributed/group_collective.h"
#include "spnas/distributed/messages.pb.h"
#include "spnas/distributed/remote_trainer_pool.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {
namespace fs = std::filesystem;

std::string JobKey(int rank, int64_t generation, int n) { return StrCat("job/", rank, ".", generation, "/", n); }
std::string ResultKey(int rank, int64_t generation, int n) { return StrCat("result/", rank, ".", generation, "/", n); }
std::string BeatKey(int rank) { return StrCat("beat/", rank); }
std::string JoinKey(int rank) { return StrCat("join/", rank); }
std::string RejoinKey(int rank, int64_t generation) { return StrCat("rejoin/", rank, ".", generation); }

namespace {

// Beats the worker's heartbeat counter from its own thread, also while a trial trains.
class Heartbeat {
 public:
  Heartbeat(c10d::Store& store, int rank)
      : thread_([this, &store, rank] {
          while (!stop_) {
            try {
              store.add(BeatKey(rank), 1);
            } catch (const std::exception&) {
              return;  // the store is gone: the main loop finds out and says so
            }
            for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(kHeartbeatPeriod / 10);
          }
        }) {}
  ~Heartbeat() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One step's trainer and context on this worker; its files go to a folder of the worker's own.
struct StepOnWorker {
  StepContext context;
  std::unique_ptr<Trainer> trainer;
};

StatusOr<WorkerResult> Train(const WorkerJob& message, StepOnWorker& step, const std::string& trials_dir,
                             std::shared_ptr<GroupCollective> collective) {
  SPNAS_RETURN_IF_ERROR(MakeDirs(trials_dir));
  TrainJob job;
  job.trial_id = message.trial_id();
  job.model = message.model();
  job.parent_model = message.parent_model();
  job.mutations.assign(message.mutations().begin(), message.mutations().end());
  job.freeze_inherited = message.freeze_inherited();
  job.convert_pretrained = message.convert_pretrained();
  job.seed = message.seed();
  job.pretrain = message.pretrain();
  job.step = &step.context;
  // The files of the trial named as on rank 0, so that callbacks put them in the same places.
  const RecordStore store(trials_dir);
  job.weights_out = store.PendingWeightsPath(job.trial_id);
  job.checkpoint = StepFolder::CheckpointPath(store.WeightsPath(job.trial_id), "last");
  if (!message.init_weights().empty()) {
    SPNAS_RETURN_IF_ERROR(CheckJobFileName(message.init_weights_name()));
    job.init_weights =
        (fs::path(trials_dir) / StrCat("init_", job.trial_id, "_", message.init_weights_name())).string();
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(job.init_weights, message.init_weights()));
  }
  if (collective != nullptr) {
    job.data_parallel = true;
    job.collective = collective;
    if (!message.checkpoint().empty()) {
      SPNAS_RETURN_IF_ERROR(WriteFileAtomic(job.checkpoint, message.checkpoint()));
      job.resume = true;
    }
  }
  LocalTrainerPool here;
  SPNAS_RETURN_IF_ERROR(here.Submit(job, step.trainer.get()));
  SPNAS_ASSIGN_OR_RETURN(TrainerPool::Done done, here.WaitAny());
  const StatusOr<TrainResult>& trained = done.result;
  WorkerResult result;
  result.set_trial_id(job.trial_id);
  result.set_seconds(done.seconds);
  if (!trained.ok()) {
    result.set_error_code(static_cast<int>(trained.status().code()));
    result.set_error_message(std::string(trained.status().message()));
  } else {
    result.set_status(trained->status);
    result.set_error(trained->error);
    result.mutable_metrics()->insert(trained->metrics.begin(), trained->metrics.end());
    result.mutable_notes()->insert(trained->notes.begin(), trained->notes.end());
    *result.mutable_model() = trained->model;
    result.set_wrote_weights(trained->wrote_weights && fs::exists(job.weights_out));
    if (result.wrote_weights()) {
      SPNAS_ASSIGN_OR_RETURN(std::string weights, ReadFile(job.weights_out));
      result.set_weights(std::move(weights));
    }
  }
  const std::string log = StepFolder::MetricsLogPath(trials_dir, job.trial_id);
  if (fs::exists(log)) {
    SPNAS_ASSIGN_OR_RETURN(std::string text, ReadFile(log));
    result.set_metrics_log(std::move(text));
  }
  // Sent: nothing of the trial needs to stay here.
  for (const std::string& path : {job.weights_out, job.checkpoint, job.init_weights, log}) {
    std::error_code ec;
    if (!path.empty()) fs::remove(path, ec);
  }
  return result;
}

}  // namespace

Status CheckJobFileName(const std::string& name) {
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos || name == "." || name == "..") {
    return InvalidArgumentError("a job names the file '", name,
                                "', which is not a plain file name: a worker writes only in its own folder");
  }
  return Status::Ok();
}

Status RunWorker(const LoadedConfig& config, const World& world, c10::intrusive_ptr<c10d::Store> store_ptr,
                 std::chrono::seconds timeout, std::chrono::milliseconds worker_timeout) {
  c10d::Store& store = *store_ptr;
  const std::string work_dir = (fs::temp_directory_path() / StrCat("spnas_worker_", ::getpid())).string();
  LOG(INFO) << "worker " << world.Describe() << ": waiting for trials (files in " << work_dir << ")";
  Heartbeat heartbeat(store, world.rank);
  int64_t generation = 0;
  try {
    generation = store.add(JoinKey(world.rank), 1);
    if (generation > 1) {
      // A restart of this rank while the run goes on: rank 0 checks it before it gets trials.
      const std::string key = RejoinKey(world.rank, generation);
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (!store.check({key})) {
        if (std::chrono::steady_clock::now() > deadline) {
          return AbortedError("rank ", world.rank, ": rank 0 did not take this restarted worker back within ",
                              timeout.count(), " s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      const std::vector<uint8_t> verdict = store.get(key);
      if (std::string(verdict.begin(), verdict.end()) != "ok") {
        return FailedPreconditionError(std::string(verdict.begin(), verdict.end()));
      }
      LOG(INFO) << "worker rank " << world.rank << " rejoined the run (start " << generation << " of this rank)";
    }
  } catch (const std::exception& e) {
    const std::string what = ExceptionMessage(e);
    return AbortedError("rank ", world.rank, " lost the run's store: ", what.substr(0, what.find('\n')));
  }
  std::map<std::string, StepOnWorker> steps;
  Status status = Status::Ok();
  try {
    for (int n = 0;; ++n) {
      const std::string key = JobKey(world.rank, generation, n);
      while (!store.check({key})) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      const std::vector<uint8_t> bytes = store.get(key);
      WorkerJob message;
      if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        status = InternalError("rank ", world.rank, ": job ", n, " from rank 0 does not parse");
        break;
      }
      if (message.stop()) {
        store.add("stopped", 1);
        LOG(INFO) << "worker rank " << world.rank << ": the run is over";
        break;
      }
      auto it = steps.find(message.step());
      if (it == steps.end()) {
        const StepConfig* step_config = nullptr;
        int index = 0;
        for (int s = 0; s < config.config().step_size(); ++s) {
          if (config.config().step(s).name() == message.step()) {
            step_config = &config.config().step(s);
            index = s;
          }
        }
        if (step_config == nullptr) {
          status = InternalError("rank ", world.rank, ": rank 0 sent a trial of step '", message.step(),
                                 "', which this rank's config does not have");
          break;
        }
        StepOnWorker step;
        step.context.config = &config;
        step.context.step = step_config;
        step.context.output_dir = (fs::path(work_dir) / message.step()).string();
        step.context.input_dir = config.InputDir(*step_config);
        step.context.seed = StepSeed(config.config().general().seed(), index);
        StatusOr<std::unique_ptr<Trainer>> trainer =
            TrainerRegistry().Create(step_config->trainer().type(), step_config->trainer().options());
        if (!trainer.ok()) {
          status = trainer.status();
          break;
        }
        step.trainer = std::move(trainer).value();
        it = steps.emplace(message.step(), std::move(step)).first;
      }
      LOG(INFO) << "[" << message.step() << "] rank " << world.rank << " trains trial " << message.trial_id();
      std::shared_ptr<GroupCollective> collective;
      if (!message.group().empty()) {
        collective = std::make_shared<GroupCollective>(
            store_ptr, message.group(), message.group_rank(),
            std::vector<int>(message.group_world_ranks().begin(), message.group_world_ranks().end()), worker_timeout,
            world.master_addr);
      }
      StatusOr<WorkerResult> result = Train(message, it->second, it->second.context.output_dir + "/trials", collective);
      if (!result.ok()) {
        // This worker's own files failed around the training (whose failures LocalTrainerPool
        // reports): the other ranks of a data-parallel group must not wait for it. Say so as
        // the trial's error, and go on.
        if (collective != nullptr) collective->Abort(std::string(result.status().message()));
        WorkerResult failed;
        failed.set_trial_id(message.trial_id());
        failed.set_error_code(static_cast<int>(result.status().code()));
        failed.set_error_message(StrCat("on worker rank ", world.rank, ": ", result.status().message()));
        result = failed;
      }
      store.set(ResultKey(world.rank, generation, n), result->SerializeAsString());
    }
  } catch (const std::exception& e) {
    const std::string what = ExceptionMessage(e);
    status =
        AbortedError("rank ", world.rank, " lost the run's store (rank 0 gone?): ", what.substr(0, what.find('\n')));
  }
  std::error_code ec;
  fs::remove_all(work_dir, ec);
  return status;
}

}  // namespace spnas
