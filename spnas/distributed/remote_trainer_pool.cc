#include "spnas/distributed/remote_trainer_pool.h"

#include <filesystem>
#include <thread>

#include "spnas/core/files.h"
#include "spnas/core/logging.h"
#include "spnas/core/step_folder.h"
#include "spnas/distributed/group_collective.h"
#include "spnas/distributed/messages.pb.h"
#include "spnas/distributed/worker.h"
#include "spnas/distributed/world.h"

namespace spnas {
namespace fs = std::filesystem;

RemoteTrainerPool::RemoteTrainerPool(c10::intrusive_ptr<c10d::Store> store, int world_size, std::string identity,
                                     std::chrono::milliseconds worker_timeout, std::string master_addr)
    : store_(std::move(store)),
      identity_(std::move(identity)),
      worker_timeout_(worker_timeout),
      master_addr_(std::move(master_addr)) {
  for (int rank = 1; rank < world_size; ++rank) {
    Worker w;
    w.rank = rank;
    w.beat_seen = std::chrono::steady_clock::now();
    workers_.push_back(w);
  }
}

RemoteTrainerPool::~RemoteTrainerPool() {
  WorkerJob stop;
  stop.set_stop(true);
  const std::string bytes = stop.SerializeAsString();
  try {
    for (Worker& w : workers_) {
      if (w.alive) store_->set(JobKey(w.rank, w.generation, w.sent++), bytes);
    }
    // The store may live in this process: the workers read their stop before it goes away.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (store_->add("stopped", 0) < Capacity() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception& e) {
    LOG(WARNING) << "could not tell the workers to stop: " << ExceptionMessage(e);
  }
}

int RemoteTrainerPool::Capacity() const {
  int alive = 0;
  for (const Worker& w : workers_) alive += w.alive;
  return alive;
}

Status RemoteTrainerPool::Submit(const TrainJob& job, Trainer* trainer) {
  queue_.push_back(job);
  if (job.data_parallel) trainer_ = trainer;
  return Status::Ok();
}

Status RemoteTrainerPool::Send(Worker& worker, const TrainJob& job, WorkerJob message) {
  const auto start = std::chrono::steady_clock::now();
  message.set_step(job.step->step->name());
  message.set_trial_id(job.trial_id);
  *message.mutable_model() = job.model;
  *message.mutable_parent_model() = job.parent_model;
  if (!job.init_weights.empty()) {
    SPNAS_ASSIGN_OR_RETURN(std::string weights, ReadFile(job.init_weights));
    message.set_init_weights(std::move(weights));
    message.set_init_weights_name(fs::path(job.init_weights).filename().string());
  }
  for (const Mutation& m : job.mutations) *message.add_mutations() = m;
  message.set_freeze_inherited(job.freeze_inherited);
  message.set_convert_pretrained(job.convert_pretrained);
  message.set_seed(job.seed);
  *message.mutable_pretrain() = job.pretrain;
  const std::string bytes = message.SerializeAsString();
  store_->set(JobKey(worker.rank, worker.generation, worker.sent), bytes);
  worker.job = job;
  worker.sent_mb = bytes.size() / 1e6;
  worker.send_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

StatusOr<std::optional<TrainerPool::Done>> RemoteTrainerPool::Collect(Worker& worker) {
  const std::string key = ResultKey(worker.rank, worker.generation, worker.sent);
  if (!store_->check({key})) return std::optional<Done>();
  const auto start = std::chrono::steady_clock::now();
  const std::vector<uint8_t> bytes = store_->get(key);
  store_->deleteKey(key);
  store_->deleteKey(JobKey(worker.rank, worker.generation, worker.sent));
  WorkerResult message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InternalError("worker rank ", worker.rank, " sent a result that does not parse");
  }
  const TrainJob job = std::move(*worker.job);
  worker.job.reset();
  ++worker.sent;
  Done done;
  done.trial_id = job.trial_id;
  done.seconds = message.seconds();
  if (message.error_code() != 0) {
    done.result = Status(static_cast<StatusCode>(message.error_code()), message.error_message());
    return std::optional<Done>(std::move(done));
  }
  TrainResult result;
  result.status = message.status();
  result.error = message.error();
  result.metrics.insert(message.metrics().begin(), message.metrics().end());
  result.notes.insert(message.notes().begin(), message.notes().end());
  result.notes["worker_rank"] = std::to_string(worker.rank);
  result.model = message.model();
  result.wrote_weights = message.wrote_weights();
  if (result.wrote_weights) SPNAS_RETURN_IF_ERROR(WriteFileAtomic(job.weights_out, message.weights()));
  if (!message.metrics_log().empty() && !job.data_parallel) {
    const std::string log = StepFolder::MetricsLogPath(fs::path(job.weights_out).parent_path().string(), job.trial_id);
    SPNAS_RETURN_IF_ERROR(WriteFileAtomic(log, message.metrics_log()));
  }
  done.result = std::move(result);
  LOG(INFO) << "trial " << job.trial_id << " came back from worker rank " << worker.rank << "; shipping cost "
            << worker.sent_mb << " MB out in " << worker.send_seconds << " s, " << bytes.size() / 1e6 << " MB back in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s";
  return std::optional<Done>(std::move(done));
}

void RemoteTrainerPool::Requeue(Worker& worker, const std::string& why) {
  if (worker.job.has_value() && worker.job->data_parallel) {
    // Rank 0 trains it too, and the group has failed it already.
    LOG(WARNING) << "worker rank " << worker.rank << " " << why << " while training trial " << worker.job->trial_id
                 << " with rank 0 (data parallel)";
    worker.job.reset();
  } else if (worker.job.has_value()) {
    LOG(WARNING) << "worker rank " << worker.rank << " " << why << "; trial " << worker.job->trial_id
                 << " goes to another worker";
    queue_.push_front(std::move(*worker.job));
    worker.job.reset();
  } else {
    LOG(WARNING) << "worker rank " << worker.rank << " " << why;
  }
}

void RemoteTrainerPool::CheckHeartbeat(Worker& worker) {
  const auto now = std::chrono::steady_clock::now();
  const int64_t beats = store_->add(BeatKey(worker.rank), 0);
  if (beats != worker.beats) {
    worker.beats = beats;
    worker.beat_seen = now;
    return;
  }
  if (now - worker.beat_seen < worker_timeout_) return;
  worker.alive = false;
  const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - worker.beat_seen).count();
  Requeue(worker, StrCat("sent no heartbeat for ", silent / 1000.0, " s"));
}

void RemoteTrainerPool::CheckRejoin(Worker& worker) {
  const int64_t generation = store_->add(JoinKey(worker.rank), 0);
  if (generation <= worker.generation) return;
  // A new process of this rank (srun, a pod, a person restarted it): the old one is gone, with
  // whatever it was training.
  Requeue(worker, StrCat("restarted (start ", generation, ")"));
  worker.generation = generation;
  worker.sent = 0;
  const std::vector<uint8_t> bytes = store_->get(HelloKey(worker.rank));
  const std::string identity(bytes.begin(), bytes.end());
  if (identity != identity_) {
    worker.alive = false;
    store_->set(RejoinKey(worker.rank, generation),
                StrCat("rank ", worker.rank, " restarted running something else than rank 0: rank 0 has ", identity_,
                       "; rank ", worker.rank, " has ", identity, ". It gets no trials."));
    LOG(WARNING) << "worker rank " << worker.rank << " restarted with another config or build; it gets no trials";
    return;
  }
  worker.alive = true;
  worker.beats = -1;
  worker.beat_seen = std::chrono::steady_clock::now();
  store_->set(RejoinKey(worker.rank, generation), "ok");
  LOG(INFO) << "worker rank " << worker.rank << " rejoined the run";
}

StatusOr<TrainerPool::Done> RemoteTrainerPool::TrainTogether(TrainJob job) {
  const std::string group = StrCat("dp/", start_id_, "/", groups_++);
  std::vector<Worker*> members;
  std::vector<int> world_ranks = {0};
  for (Worker& w : workers_) {
    if (!w.alive) continue;
    members.push_back(&w);
    world_ranks.push_back(w.rank);
  }
  std::string checkpoint;  // a resumed job: every rank continues from rank 0's checkpoint
  if (job.resume && !job.checkpoint.empty() && fs::exists(job.checkpoint)) {
    SPNAS_ASSIGN_OR_RETURN(checkpoint, ReadFile(job.checkpoint));
  }
  for (size_t g = 0; g < members.size(); ++g) {
    WorkerJob message;
    message.set_group(group);
    message.set_group_rank(static_cast<int>(g + 1));
    for (int rank : world_ranks) message.add_group_world_ranks(rank);
    message.set_checkpoint(checkpoint);
    SPNAS_RETURN_IF_ERROR(Send(*members[g], job, std::move(message)));
  }
  LOG(INFO) << "[" << job.step->step->name() << "] trial " << job.trial_id << " trains on " << world_ranks.size()
            << " ranks (data parallel)";
  auto collective = std::make_shared<GroupCollective>(store_, group, 0, world_ranks, worker_timeout_, master_addr_);
  job.collective = collective;
  LocalTrainerPool here;
  SPNAS_RETURN_IF_ERROR(here.Submit(job, trainer_));
  SPNAS_ASSIGN_OR_RETURN(Done done, here.WaitAny());  // a failure aborts the group
  // The workers end with rank 0 (or fail with it): wait for their word, or their silence.
  bool all_back = true;
  for (Worker* w : members) {
    while (w->alive && w->job.has_value()) {
      SPNAS_ASSIGN_OR_RETURN(std::optional<Done> back, Collect(*w));
      if (back.has_value()) {
        if (!back->result.ok()) LOG(WARNING) << "worker rank " << w->rank << ": " << back->result.status().message();
        break;
      }
      CheckHeartbeat(*w);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    all_back = all_back && w->alive;
  }
  if (all_back) collective->DeleteKeys();
  if (done.result.ok()) done.result->notes["data_parallel_ranks"] = std::to_string(world_ranks.size());
  return done;
}

StatusOr<TrainerPool::Done> RemoteTrainerPool::WaitAny() {
  try {
    while (true) {
      bool idle = true;
      for (Worker& w : workers_) idle = idle && !(w.alive && w.job.has_value());
      if (idle && !queue_.empty() && queue_.front().data_parallel) {
        TrainJob job = std::move(queue_.front());
        queue_.pop_front();
        return TrainTogether(std::move(job));
      }
      for (Worker& w : workers_) {
        CheckRejoin(w);
        if (w.alive && !w.job.has_value() && !queue_.empty() && !queue_.front().data_parallel) {
          SPNAS_RETURN_IF_ERROR(Send(w, queue_.front()));
          queue_.pop_front();
        }
      }
      bool busy = false;
      for (Worker& w : workers_) {
        if (!w.alive || !w.job.has_value()) continue;
        SPNAS_ASSIGN_OR_RETURN(std::optional<Done> done, Collect(w));
        if (done.has_value()) return std::move(*done);
        CheckHeartbeat(w);
        busy = busy || w.job.has_value();
      }
      if (Capacity() == 0) {
        return AbortedError("every worker of the run is gone (no heartbeat within ", worker_timeout_.count(),
                            " ms); resume the run with --resume once they are back");
      }
      if (!busy && queue_.empty()) return FailedPreconditionError("no job was submitted");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception& e) {
    const std::string what = ExceptionMessage(e);
    return AbortedError("the run's store failed: ", what.substr(0, what.find('\n')));
  }
}

}  // namespace spnas
