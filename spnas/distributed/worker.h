// A worker of a distributed run (every rank but 0): trains the trials rank 0 sends until it is
// told to stop, beating its heartbeat meanwhile.
#ifndef SPNAS_DISTRIBUTED_WORKER_H_
#define SPNAS_DISTRIBUTED_WORKER_H_

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/core/config.h"
#include "spnas/distributed/world.h"

namespace spnas {

// Keys of the protocol, shared by RemoteTrainerPool and RunWorker.
std::string JobKey(int rank, int n);
std::string ResultKey(int rank, int n);
std::string BeatKey(int rank);

Status RunWorker(const LoadedConfig& config, const World& world, c10d::Store& store);

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_WORKER_H_
