// All-reduce (sum) of 100 MiB of float32 between 2 ranks with LibTorch's Gloo backend
// (c10d::ProcessGroupGloo over TCP on loopback), next to the same sum through a c10d TCPStore
// (each rank puts its tensor in the store and reads the other's back, as data parallel once
// did) and a plain memcpy of the same 100 MiB for the machine's memory bandwidth. The ranks are two process groups in
// this process; a rank's collective runs on its group's own threads, so one thread starts both and waits for both.
//   bazel run //benchmarks:allreduce_benchmark
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <vector>

namespace {

using c10d::ProcessGroupGloo;

constexpr int64_t kBytes = 100 << 20;
constexpr int64_t kFloats = kBytes / sizeof(float);

// Two process groups (ranks 0 and 1) on a loopback TCPStore, made once for every run.
struct LoopbackPair {
  std::vector<c10::intrusive_ptr<ProcessGroupGloo>> groups;

  LoopbackPair() {
    c10d::TCPStoreOptions options;
    options.port = 0;  // The kernel picks one; rank 1 asks rank 0's store which.
    options.isServer = true;
    options.waitWorkers = false;
    auto server = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
    std::vector<c10::intrusive_ptr<c10d::Store>> stores = {server};
    options.isServer = false;
    options.port = server->getPort();
    stores.push_back(c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options));
    // Each group connects to the other while it is constructed: both at once.
    std::vector<std::future<c10::intrusive_ptr<ProcessGroupGloo>>> made;
    for (int rank = 0; rank < 2; ++rank) {
      made.push_back(std::async(std::launch::async, [&stores, rank] {
        auto group_options = ProcessGroupGloo::Options::create(std::chrono::minutes(5));
        group_options->devices.push_back(ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        return c10::make_intrusive<ProcessGroupGloo>(stores[rank], rank, 2, group_options);
      }));
    }
    for (auto& group : made) groups.push_back(group.get());
  }
};

void BM_GlooAllReduce100MB(benchmark::State& state) {
  // Never destroyed: the groups' threads would otherwise outlive LibTorch's statics at exit.
  static const LoopbackPair& pair = *new LoopbackPair;
  // Zeros stay zeros however many times they are summed in place (no overflow to inf).
  std::vector<std::vector<at::Tensor>> tensors = {{at::zeros({kFloats})}, {at::zeros({kFloats})}};
  for (auto _ : state) {
    auto work0 = pair.groups[0]->allreduce(tensors[0]);
    auto work1 = pair.groups[1]->allreduce(tensors[1]);
    work0->wait();
    work1->wait();
  }
  // Bytes per second of one rank's buffer: what the NCCL tests call the algorithm bandwidth.
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_GlooAllReduce100MB)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// Each rank puts its 100 MiB in rank 0's TCPStore, in values of 4 MiB (the gradient buckets
// of data parallel; the store takes at most 8 MiB a value), reads the other's back and adds
// it: every byte passes through the store's server twice.
void BM_StoreAllReduce100MB(benchmark::State& state) {
  c10d::TCPStoreOptions options;
  options.port = 0;
  options.isServer = true;
  options.waitWorkers = false;
  auto server = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  options.isServer = false;
  options.port = server->getPort();
  std::vector<c10::intrusive_ptr<c10d::TCPStore>> clients = {c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options),
                                                             c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options)};
  std::vector<at::Tensor> tensors = {at::zeros({kFloats}), at::zeros({kFloats})};
  int64_t call = 0;
  constexpr int64_t kChunk = 4 << 20;
  auto key = [&](int64_t chunk, int r) {
    return std::to_string(call) + "/" + std::to_string(chunk) + "/" + std::to_string(r);
  };
  auto rank = [&](int r) {
    const auto* bytes = static_cast<const uint8_t*>(tensors[r].data_ptr());
    for (int64_t chunk = 0; chunk < kBytes / kChunk; ++chunk) {
      const uint8_t* mine = bytes + chunk * kChunk;
      clients[r]->set(key(chunk, r), std::vector<uint8_t>(mine, mine + kChunk));
      const std::vector<uint8_t> other = clients[r]->get(key(chunk, 1 - r));
      tensors[r]
          .narrow(0, chunk * kChunk / 4, kChunk / 4)
          .add_(at::from_blob(const_cast<uint8_t*>(other.data()), {kChunk / 4}));
    }
  };
  for (auto _ : state) {
    auto other = std::async(std::launch::async, rank, 1);
    rank(0);
    other.get();
    for (int64_t chunk = 0; chunk < kBytes / kChunk; ++chunk) {
      for (int r = 0; r < 2; ++r) clients[r]->deleteKey(key(chunk, r));
    }
    ++call;
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_StoreAllReduce100MB)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

void BM_Memcpy100MB(benchmark::State& state) {
  // Written once first, so the pages are mapped before the timed copies.
  std::vector<char> from(kBytes, 1);
  std::vector<char> to(kBytes, 0);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kBytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_Memcpy100MB)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
