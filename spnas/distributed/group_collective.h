// The Collective of a data-parallel group: tensors are summed by LibTorch's Gloo backend
// (c10d::ProcessGroupGloo), rank to rank; the run's c10d store serves only to meet, and to
// watch the other members (their heartbeats and aborts) while a call waits.
#ifndef SPNAS_DISTRIBUTED_GROUP_COLLECTIVE_H_
#define SPNAS_DISTRIBUTED_GROUP_COLLECTIVE_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/trainers/collective.h"

namespace spnas {

class GroupCollective : public Collective {
 public:
  // `group` names the group's keys; `world_ranks[r]` is group rank r's rank in the run (0 is
  // rank 0, which sends no heartbeat: the store lives with it or with torchrun's agent). Every
  // member constructs its collective at the same point (they connect to each other). A member
  // whose heartbeat stops for `timeout`, or that aborts, makes every call throw; so does a
  // call that takes longer than `timeout`.
  // `master_addr` (rank 0's address) picks the network device of the connections: loopback
  // when it is, so that nothing from outside this machine can connect (GLOO_SOCKET_IFNAME, as
  // in PyTorch, names an interface instead).
  GroupCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, int rank, std::vector<int> world_ranks,
                  std::chrono::milliseconds timeout, std::string master_addr = "127.0.0.1");
  ~GroupCollective() override;
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  at::Tensor AllReduceSum(const at::Tensor& values) override;
  void Abort(const std::string& why) override;
  // Another process group of the same members, ordered apart (every member splits in the same
  // order).
  std::shared_ptr<Collective> Split(const std::string& name) override;
  // Once every rank is done with the group: removes its abort key from the store.
  void DeleteKeys();

 private:
  GroupCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, std::string abort_key, int rank,
                  std::vector<int> world_ranks, std::chrono::milliseconds timeout, std::string master_addr);
  // The process group, connected at the first call.
  c10d::Backend& Backend();
  // Throws when a member aborted or went silent.
  void CheckMembers();

  c10::intrusive_ptr<c10d::Store> store_;
  std::string group_;
  std::string abort_key_;  // shared with the splits
  int rank_;
  std::vector<int> world_ranks_;
  std::chrono::milliseconds timeout_;
  std::string master_addr_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::atomic<bool> aborted_{false};
  struct Beat {
    int64_t count = -1;
    std::chrono::steady_clock::time_point seen;
  };
  std::map<int, Beat> beats_;  // world rank -> last heartbeat seen
};

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_GROUP_COLLECTIVE_H_
