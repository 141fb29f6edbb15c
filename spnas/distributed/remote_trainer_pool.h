// Rank 0's side of a distributed run: hands trials to the workers through the c10d store,
// takes their results back, and gives the trial of a worker that stopped sending heartbeats
// to another worker.
#ifndef SPNAS_DISTRIBUTED_REMOTE_TRAINER_POOL_H_
#define SPNAS_DISTRIBUTED_REMOTE_TRAINER_POOL_H_

#include <chrono>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/distributed/messages.pb.h"
#include "spnas/trainers/trainer_pool.h"

namespace spnas {

// How often workers beat, and after how long without a beat rank 0 gives a worker up.
inline constexpr std::chrono::milliseconds kHeartbeatPeriod{500};
inline constexpr std::chrono::seconds kDefaultWorkerTimeout{10};

class RemoteTrainerPool : public TrainerPool {
 public:
  // The workers are ranks 1 .. world_size - 1.
  // A worker rank that restarts rejoins if it runs `identity` (see AgreeOnRun).
  // `master_addr` (rank 0's address) picks the network of data-parallel groups (GroupCollective).
  RemoteTrainerPool(c10::intrusive_ptr<c10d::Store> store, int world_size, std::string identity,
                    std::chrono::milliseconds worker_timeout = kDefaultWorkerTimeout,
                    std::string master_addr = "127.0.0.1");
  // Tells the live workers to exit.
  ~RemoteTrainerPool() override;

  int Capacity() const override;
  Status Submit(const TrainJob& job, Trainer* trainer) override;
  StatusOr<Done> WaitAny() override;

 private:
  struct Worker {
    int rank = 0;
    int64_t generation = 1;                // which start of the rank this is (JoinKey)
    int sent = 0;                          // jobs sent to it so far: the next job key's number
    std::optional<TrainJob> job;           // the job it trains, if any
    double sent_mb = 0, send_seconds = 0;  // what sending that job cost
    int64_t beats = -1;                    // its heartbeat counter when last seen to change
    std::chrono::steady_clock::time_point beat_seen;
    bool alive = true;
  };
  // `message` may hold fields of its own (a data-parallel group's); Send fills in the job.
  Status Send(Worker& worker, const TrainJob& job, WorkerJob message = WorkerJob());
  // A data-parallel job: rank 0 and every live worker train it together.
  StatusOr<Done> TrainTogether(TrainJob job);
  StatusOr<std::optional<Done>> Collect(Worker& worker);
  void CheckHeartbeat(Worker& worker);
  void CheckRejoin(Worker& worker);
  // Takes the worker's job back to the front of the queue, saying why.
  void Requeue(Worker& worker, const std::string& why);

  c10::intrusive_ptr<c10d::Store> store_;
  std::string identity_;
  std::chrono::milliseconds worker_timeout_;
  std::string master_addr_;
  std::vector<Worker> workers_;
  std::deque<TrainJob> queue_;
  Trainer* trainer_ = nullptr;  // rank 0's, for its part of data-parallel jobs
  int groups_ = 0;              // data-parallel groups so far
  // Names this start of rank 0's groups: a restarted rank 0 on a store that outlived it
  // (torchrun's) must not meet the connection keys of the groups before it.
  uint64_t start_id_ = std::random_device()();
};

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_REMOTE_TRAINER_POOL_H_
