// A Collective over the run's c10d store: the ranks of a data-parallel group sum tensors by
// putting them in the store and reading each other's. Every value passes through the store's
// server, which suits the models spnas searches on CPU; see the README for its cost.
#ifndef SPNAS_DISTRIBUTED_STORE_COLLECTIVE_H_
#define SPNAS_DISTRIBUTED_STORE_COLLECTIVE_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "spnas/trainers/collective.h"

namespace spnas {

class StoreCollective : public Collective {
 public:
  // `group` names the group's keys; `world_ranks[r]` is group rank r's rank in the run (0 is
  // rank 0, which sends no heartbeat: the store lives with it or with torchrun's agent). A
  // member whose heartbeat stops for `timeout`, or that aborts, makes every call throw.
  StoreCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, int rank, std::vector<int> world_ranks,
                  std::chrono::milliseconds timeout);
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  at::Tensor AllReduceSum(const at::Tensor& values) override;
  void Abort(const std::string& why) override;
  std::shared_ptr<Collective> Split(const std::string& name) override;
  // Once every rank is done with the group: removes what is left of it (and its splits) in
  // the store.
  void DeleteKeys();

 private:
  StoreCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, std::string abort_key, int rank,
                  std::vector<int> world_ranks, std::chrono::milliseconds timeout);
  std::string Key(int64_t call, int rank) const;
  // Waits for `key`, watching the abort key and the members' heartbeats.
  std::vector<uint8_t> Get(const std::string& key);

  c10::intrusive_ptr<c10d::Store> store_;
  std::string group_;
  std::string abort_key_;  // shared with the splits
  int rank_;
  std::vector<int> world_ranks_;
  std::chrono::milliseconds timeout_;
  int64_t calls_ = 0;
  std::atomic<bool> aborted_{false};
  struct Beat {
    int64_t count = -1;
    std::chrono::steady_clock::time_point seen;
  };
  std::map<int, Beat> beats_;  // world rank -> last heartbeat seen
  std::vector<std::shared_ptr<StoreCollective>> splits_;
};

}  // namespace spnas

#endif  // SPNAS_DISTRIBUTED_STORE_COLLECTIVE_H_
