// One run per folder: an exclusive lock on `<folder>/.run.lock` for the life of the process.
// flock(2) locks go with the process, so the kernel releases them on any exit, SIGKILL
// included; the file names its holder (pid, host, start), and a file left with a holder in it
// tells the next run that the last one ended without releasing it (a crash or a kill).
#ifndef SPNAS_CORE_RUN_LOCK_H_
#define SPNAS_CORE_RUN_LOCK_H_

#include <memory>
#include <string>

#include "spnas/core/status.h"

namespace spnas {

class RunLock {
 public:
  // The lock, or FailedPrecondition naming the run that holds it.
  static StatusOr<std::unique_ptr<RunLock>> Acquire(const std::string& folder);
  ~RunLock();  // releases the lock and empties the file (a clean end)
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace spnas

#endif  // SPNAS_CORE_RUN_LOCK_H_
