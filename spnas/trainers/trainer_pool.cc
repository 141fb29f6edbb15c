#include "spnas/trainers/trainer_pool.h"

#include <chrono>

namespace spnas {
namespace {

StatusOr<TrainResult> TrainCatchingExceptions(Trainer& trainer, const TrainJob& job) {
  try {
    return trainer.Train(job);
  } catch (const std::exception& e) {
    TrainResult result;
    result.status = FAILED;
    result.error = StrCat("exception: ", ExceptionMessage(e));
    return result;
  }
}

}  // namespace

Status LocalTrainerPool::Submit(const TrainJob& job, Trainer* trainer) {
  queue_.emplace_back(job, trainer);
  return Status::Ok();
}

StatusOr<TrainerPool::Done> LocalTrainerPool::WaitAny() {
  if (queue_.empty()) return FailedPreconditionError("no job was submitted");
  auto [job, trainer] = std::move(queue_.front());
  queue_.pop_front();
  const auto start = std::chrono::steady_clock::now();
  Done done;
  done.trial_id = job.trial_id;
  done.result = TrainCatchingExceptions(*trainer, job);
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Data parallel: a rank whose training ended otherwise than finished tells the others, so
  // that none of them waits for it.
  if (job.collective != nullptr && (!done.result.ok() || done.result->status != FINISHED)) {
    job.collective->Abort(!done.result.ok() ? std::string(done.result.status().message()) : done.result->error);
  }
  return done;
}

}  // namespace spnas
