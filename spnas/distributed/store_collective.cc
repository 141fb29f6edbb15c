#include "spnas/distributed/store_collective.h"

#include <ATen/ATen.h>

#include <cstring>
#include <stdexcept>

#include "spnas/core/status.h"
#include "spnas/distributed/worker.h"

namespace spnas {
namespace {

// A value in the store: one byte for the element type, then the elements.
std::vector<uint8_t> Encode(const at::Tensor& values) {
  const at::Tensor t = values.contiguous();
  if (t.dim() != 1 || !t.device().is_cpu() || (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble)) {
    throw std::invalid_argument(
        StrCat("AllReduceSum takes a 1-D float or double CPU tensor, got ", t.toString(), " ", t.sizes()));
  }
  std::vector<uint8_t> bytes(1 + t.nbytes());
  bytes[0] = t.scalar_type() == at::kFloat ? 4 : 8;
  std::memcpy(bytes.data() + 1, t.data_ptr(), t.nbytes());
  return bytes;
}

at::Tensor Decode(const std::vector<uint8_t>& bytes) {
  if (bytes.empty() || (bytes[0] != 4 && bytes[0] != 8) || (bytes.size() - 1) % bytes[0] != 0) {
    throw std::runtime_error("data parallel: a rank's value in the store is malformed");
  }
  const at::ScalarType type = bytes[0] == 4 ? at::kFloat : at::kDouble;
  const int64_t n = static_cast<int64_t>(bytes.size() - 1) / bytes[0];
  at::Tensor t = at::empty({n}, at::TensorOptions().dtype(type));
  std::memcpy(t.data_ptr(), bytes.data() + 1, t.nbytes());
  return t;
}

}  // namespace

StoreCollective::StoreCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, int rank,
                                 std::vector<int> world_ranks, std::chrono::milliseconds timeout)
    : StoreCollective(std::move(store), group, group + "/abort", rank, std::move(world_ranks), timeout) {}

StoreCollective::StoreCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, std::string abort_key,
                                 int rank, std::vector<int> world_ranks, std::chrono::milliseconds timeout)
    : store_(std::move(store)),
      group_(std::move(group)),
      abort_key_(std::move(abort_key)),
      rank_(rank),
      world_ranks_(std::move(world_ranks)),
      timeout_(timeout) {}

std::shared_ptr<Collective> StoreCollective::Split(const std::string& name) {
  splits_.push_back(std::shared_ptr<StoreCollective>(
      new StoreCollective(store_, group_ + "/" + name, abort_key_, rank_, world_ranks_, timeout_)));
  return splits_.back();
}

std::string StoreCollective::Key(int64_t call, int rank) const { return StrCat(group_, "/", call, "/", rank); }

at::Tensor StoreCollective::AllReduceSum(const at::Tensor& values) {
  const std::vector<uint8_t> mine = Encode(values);
  store_->set(Key(calls_, rank_), mine);
  at::Tensor sum;
  for (int r = 0; r < size(); ++r) {
    const at::Tensor t = Decode(r == rank_ ? mine : Get(Key(calls_, r)));
    if (sum.defined() && (t.numel() != sum.numel() || t.scalar_type() != sum.scalar_type())) {
      throw std::runtime_error(StrCat("data parallel: rank ", r, " of group ", group_, " sent ", t.numel(),
                                      " values where the ranks before it sent ", sum.numel()));
    }
    sum = sum.defined() ? sum + t : t;
  }
  // Every rank has put this call's value, so every rank has read the previous call's.
  if (calls_ > 0) store_->deleteKey(Key(calls_ - 1, rank_));
  ++calls_;
  return sum;
}

void StoreCollective::Abort(const std::string& why) {
  if (aborted_.exchange(true)) return;
  try {
    store_->set(abort_key_, StrCat("rank ", world_ranks_[rank_], " gave up: ", why));
  } catch (const std::exception&) {
    // The store is gone: the others find out by themselves.
  }
}

void StoreCollective::DeleteKeys() {
  for (int r = 0; r < size(); ++r) {
    if (calls_ > 0) store_->deleteKey(Key(calls_ - 1, r));
  }
  for (auto& split : splits_) split->DeleteKeys();
  store_->deleteKey(abort_key_);
}

std::vector<uint8_t> StoreCollective::Get(const std::string& key) {
  while (true) {
    if (aborted_) throw std::runtime_error(StrCat("data parallel: rank ", world_ranks_[rank_], " gave up"));
    try {
      store_->wait({key}, std::chrono::milliseconds(200));
      return store_->get(key);
    } catch (const c10::DistStoreError&) {
      // Not there yet: see whether it can still come.
    }
    if (store_->check({abort_key_})) {
      const std::vector<uint8_t> why = store_->get(abort_key_);
      throw std::runtime_error(StrCat("data parallel: ", std::string(why.begin(), why.end())));
    }
    const auto now = std::chrono::steady_clock::now();
    for (int world_rank : world_ranks_) {
      if (world_rank == 0 || world_rank == world_ranks_[rank_]) continue;
      const int64_t count = store_->add(BeatKey(world_rank), 0);
      Beat& beat = beats_[world_rank];
      if (count != beat.count) {
        beat = {count, now};
      } else if (now - beat.seen > timeout_) {
        throw std::runtime_error(
            StrCat("data parallel: rank ", world_rank, " sent no heartbeat for ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(now - beat.seen).count() / 1000.0, " s"));
      }
    }
  }
}

}  // namespace spnas
