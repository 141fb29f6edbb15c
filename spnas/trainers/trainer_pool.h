// Where a step's trials train: in this process one at a time (LocalTrainerPool), or on the
// workers of a distributed run (spnas/distributed), several at once while the search goes on.
#ifndef SPNAS_TRAINERS_TRAINER_POOL_H_
#define SPNAS_TRAINERS_TRAINER_POOL_H_

#include <deque>

#include "spnas/trainers/trainer.h"

namespace spnas {

class TrainerPool {
 public:
  struct Done {
    int trial_id = 0;
    // An error Status is the trial's failure (recorded as FAILED), except kResourceExhausted
    // (a full disk), which stops the run. Exceptions arrive as FAILED results.
    StatusOr<TrainResult> result = TrainResult();
    double seconds = 0;
  };

  virtual ~TrainerPool() = default;
  // Jobs that can train at once.
  virtual int Capacity() const = 0;
  // Hands out a job of the step `job.step`: its weights are to appear at job.weights_out on
  // this machine. Jobs beyond the capacity wait their turn.
  virtual Status Submit(const TrainJob& job, Trainer* trainer) = 0;
  // Waits until one submitted job ends. An error Status means the pool itself cannot go on.
  virtual StatusOr<Done> WaitAny() = 0;
};

// Trains each job in this process when it is waited for; an exception becomes a FAILED
// result with its message. A data-parallel job that does not finish aborts its collective.
class LocalTrainerPool : public TrainerPool {
 public:
  int Capacity() const override { return 1; }
  Status Submit(const TrainJob& job, Trainer* trainer) override;
  StatusOr<Done> WaitAny() override;

 private:
  std::deque<std::pair<TrainJob, Trainer*>> queue_;
};

}  // namespace spnas

#endif  // SPNAS_TRAINERS_TRAINER_POOL_H_
