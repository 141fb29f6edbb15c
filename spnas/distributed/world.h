// The processes of a distributed run, as torchrun, Slurm or a Kubernetes PyTorchJob start
// them, and the c10d store they meet at.
#ifndef SPNAS_DISTRIBUTED_WORLD_H_
#define SPNAS_DISTRIBUTED_WORLD_H_

#include <chrono>
#include <string>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/core/status.h"

namespace spnas {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 29500;
  // torchrun's agent already serves the store at MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE):
  // rank 0 connects to it instead of serving its own.
  bool agent_store = false;
  // Keys of this run are under "spnas/<run_id>/": a restarted group never reads an earlier one's.
  std::string run_id = "0";
  bool distributed() const { return size > 1; }
  std::string Describe() const;  // "rank 1 of 3 (local rank 1), master 127.0.0.1:29500"
};

// From torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or, without
// them, Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of
// SLURM_JOB_NODELIST, MASTER_PORT or 29500). Neither: a world of one process.
StatusOr<World> WorldFromEnvironment();

// "node[03-05,9],gpu1" -> "node03": the first host of a Slurm node list.
std::string FirstSlurmHost(const std::string& nodelist);

// Connects to the run's store (rank 0 serves it unless torchrun's agent does). A master that
// cannot be reached within `timeout`, or a port in use, is an error naming the address.
StatusOr<c10::intrusive_ptr<c10d::Store>> ConnectStore(const World& world, std::chrono::seconds timeout);

// Every rank says what it runs (`identity`: the config's fingerprint and the build); rank 0
// compares them and every rank gets the same verdict: OK, or an error naming the ranks that
// differ, or those that did not show up within `timeout`.
Status AgreeOnRun(c10d::Store& store, const World& world, const std::string& identity, std::chrono::seconds timeout);

// Where rank `rank` put its identity for AgreeOnRun.
std::string HelloKey(int rank);

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_WORLD_H_
