// A worker of a distributed run (every rank but 0): trains the trials rank 0 sends until it is
// told to stop, beating its heartbeat meanwhile.
#ifndef SPNAS_DISTRIBUTED_WORKER_H_
#define SPNAS_DISTRIBUTED_WORKER_H_

#include <chrono>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/core/config.h"
#include "spnas/distributed/world.h"

namespace spnas {

// Keys of the protocol, shared by RemoteTrainerPool and RunWorker. Each start of a worker rank
// is a new generation of it (counted at JoinKey): a restarted worker rejoins the run under keys
// of its own, once rank 0 has checked its identity (RejoinKey: "ok" or why not).
std::string JobKey(int rank, int64_t generation, int n);
std::string ResultKey(int rank, int64_t generation, int n);
std::string BeatKey(int rank);
std::string JoinKey(int rank);
std::string RejoinKey(int rank, int64_t generation);

// Ok when `name`, a file name a job gives a file the worker writes, is one plain name: no
// folder, not "." or "..", so that nothing a worker receives writes outside its own folder.
Status CheckJobFileName(const std::string& name);

// `timeout`: how long a restarted worker waits for rank 0 to take it back; `worker_timeout`:
// how long a rank training a trial with it (data parallel) may send no heartbeat.
Status RunWorker(const LoadedConfig& config, const World& world, c10::intrusive_ptr<c10d::Store> store,
                 std::chrono::seconds timeout, std::chrono::milliseconds worker_timeout);

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_WORKER_H_
