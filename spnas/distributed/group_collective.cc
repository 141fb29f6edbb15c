#include "spnas/distributed/group_collective.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>
#include <future>
#include <stdexcept>
#include <thread>

#include "spnas/core/status.h"
#include "spnas/distributed/worker.h"

namespace spnas {
namespace {

// How often a waiting call looks at the members in the store.
constexpr std::chrono::milliseconds kWatchPeriod{200};

bool IsLoopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

// The network device of the group's connections: GLOO_SOCKET_IFNAME's interface when set;
// loopback when rank 0 is on loopback (every rank is on this machine); otherwise the address
// this machine's hostname resolves to, as PyTorch picks it.
std::shared_ptr<::gloo::transport::Device> Device(const std::string& master_addr) {
  if (const char* name = std::getenv("GLOO_SOCKET_IFNAME"); name != nullptr && *name != '\0') {
    return c10d::ProcessGroupGloo::createDeviceForInterface(name);
  }
  if (master_addr.empty() || IsLoopback(master_addr)) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Waits until `done()`, looking at the group's members every kWatchPeriod meanwhile.
template <typename Done, typename Watch>
void WaitWatching(Done done, Watch watch) {
  auto next_watch = std::chrono::steady_clock::now() + kWatchPeriod;
  auto pause = std::chrono::microseconds(20);
  while (!done()) {
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
    if (std::chrono::steady_clock::now() >= next_watch) {
      watch();
      next_watch = std::chrono::steady_clock::now() + kWatchPeriod;
    }
  }
}

}  // namespace

GroupCollective::GroupCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, int rank,
                                 std::vector<int> world_ranks, std::chrono::milliseconds timeout,
                                 std::string master_addr)
    : GroupCollective(std::move(store), group, group + "/abort", rank, std::move(world_ranks), timeout,
                      std::move(master_addr)) {}

GroupCollective::GroupCollective(c10::intrusive_ptr<c10d::Store> store, std::string group, std::string abort_key,
                                 int rank, std::vector<int> world_ranks, std::chrono::milliseconds timeout,
                                 std::string master_addr)
    : store_(std::move(store)),
      group_(std::move(group)),
      abort_key_(std::move(abort_key)),
      rank_(rank),
      world_ranks_(std::move(world_ranks)),
      timeout_(timeout),
      master_addr_(std::move(master_addr)) {}

GroupCollective::~GroupCollective() = default;

std::shared_ptr<Collective> GroupCollective::Split(const std::string& name) {
  return std::shared_ptr<GroupCollective>(
      new GroupCollective(store_, group_ + "/" + name, abort_key_, rank_, world_ranks_, timeout_, master_addr_));
}

c10d::Backend& GroupCollective::Backend() {
  if (backend_) return *backend_;
  // The members connect to each other (meeting through the store) in a thread of its own, so
  // that a member that never comes is named by the watch, not by Gloo's timeout.
  auto connecting =
      std::async(std::launch::async, [store = c10::make_intrusive<c10d::PrefixStore>(group_ + "/gloo", store_),
                                      rank = rank_, size = size(), timeout = timeout_, host = master_addr_] {
        // Gloo's own timeout is the last resort: the watch gives up on a silent member first.
        auto options = c10d::ProcessGroupGloo::Options::create(2 * timeout + std::chrono::seconds(5));
        options->devices.push_back(Device(host));
        return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
      });
  try {
    WaitWatching([&] { return connecting.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
                 [&] { CheckMembers(); });
  } catch (...) {
    // The connecting thread ends by Gloo's timeout at the latest; its result is dropped.
    std::thread([c = std::move(connecting)]() mutable { c.wait(); }).detach();
    throw;
  }
  backend_ = connecting.get();
  return *backend_;
}

at::Tensor GroupCollective::AllReduceSum(const at::Tensor& values) {
  if (values.dim() != 1 || !values.device().is_cpu() ||
      (values.scalar_type() != at::kFloat && values.scalar_type() != at::kDouble)) {
    throw std::invalid_argument(
        StrCat("AllReduceSum takes a 1-D float or double CPU tensor, got ", values.toString(), " ", values.sizes()));
  }
  if (aborted_) throw std::runtime_error(StrCat("data parallel: rank ", world_ranks_[rank_], " gave up"));
  std::vector<at::Tensor> tensors = {values.clone(at::MemoryFormat::Contiguous)};  // summed in place
  c10::intrusive_ptr<c10d::Work> work = Backend().allreduce(tensors);
  try {
    WaitWatching([&] { return work->isCompleted(); }, [&] { CheckMembers(); });
    work->wait();
  } catch (const std::exception& e) {
    // A member that died makes Gloo fail at once: give the watch its time to name it (its
    // heartbeat stops, or it aborted), and say what Gloo said otherwise.
    const auto deadline = std::chrono::steady_clock::now() + timeout_ + 2 * kWatchPeriod;
    WaitWatching([&] { return std::chrono::steady_clock::now() >= deadline; }, [&] { CheckMembers(); });
    throw std::runtime_error(StrCat("data parallel: ", e.what()));
  }
  return tensors[0];
}

void GroupCollective::Abort(const std::string& why) {
  if (aborted_.exchange(true)) return;
  try {
    store_->set(abort_key_, StrCat("rank ", world_ranks_[rank_], " gave up: ", why));
  } catch (const std::exception&) {
    // The store is gone: the others find out by themselves.
  }
}

void GroupCollective::DeleteKeys() { store_->deleteKey(abort_key_); }

void GroupCollective::CheckMembers() {
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

}  // namespace spnas
