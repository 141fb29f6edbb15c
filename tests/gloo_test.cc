// LibTorch's own Gloo backend (c10d::ProcessGroupGloo, compiled into libtorch_cpu.so) through
// the Gloo headers of third_party/gloo: two ranks as threads, each with its own process group,
// meeting on a loopback TCPStore, and Gloo's own API beneath it. Headers that do not match the
// Gloo inside the wheel (class layouts, virtual tables, gloo/config.h) show here as a crash, a
// wrong sum or a field that is not where LibTorch's Gloo put it.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace spnas {
namespace {

using c10d::ProcessGroupGloo;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

// Far below LibTorch's 30 min default: a rank that never comes fails the test instead of hanging it.
constexpr milliseconds kTimeout{20000};

// Rank 0 serves the store on a port the kernel picks; the other ranks connect to that port.
std::vector<c10::intrusive_ptr<c10d::Store>> LoopbackStores(int n) {
  c10d::TCPStoreOptions options;
  options.port = 0;
  options.isServer = true;
  options.waitWorkers = false;
  options.timeout = kTimeout;
  auto server = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  std::vector<c10::intrusive_ptr<c10d::Store>> stores = {server};
  options.isServer = false;
  options.port = server->getPort();
  for (int rank = 1; rank < n; ++rank) stores.push_back(c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options));
  return stores;
}

c10::intrusive_ptr<ProcessGroupGloo::Options> LoopbackOptions(milliseconds timeout = kTimeout) {
  auto options = ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return options;
}

// Runs fn(rank) for ranks 0..n-1 at once, as threads, and returns the results in rank order.
template <typename Fn>
auto OnThreads(int n, Fn fn) {
  std::vector<std::future<decltype(fn(0))>> futures;
  for (int rank = 0; rank < n; ++rank) futures.push_back(std::async(std::launch::async, fn, rank));
  std::vector<decltype(fn(0))> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

using MakeOptions = std::function<c10::intrusive_ptr<ProcessGroupGloo::Options>()>;

// Runs fn(group, rank) on ranks 0..n-1, each with its own process group (the groups connect to
// each other while they are constructed, so all at once).
template <typename Fn>
auto OnRanks(
    int n, Fn fn, const MakeOptions& make_options = [] { return LoopbackOptions(); }) {
  const auto stores = LoopbackStores(n);
  return OnThreads(n, [&](int rank) {
    auto group = c10::make_intrusive<ProcessGroupGloo>(stores[rank], rank, n, make_options());
    return fn(*group, rank);
  });
}

at::Tensor AllReduceSum(ProcessGroupGloo& group, at::Tensor tensor) {
  std::vector<at::Tensor> tensors = {tensor};
  group.allreduce(tensors)->wait();
  return tensors[0];
}

TEST(GlooTest, AllReducesFloatsToTheirExactSum) {
  const auto sums = OnRanks(2, [](ProcessGroupGloo& group, int rank) {
    EXPECT_EQ(group.getBackendName(), "gloo");
    EXPECT_EQ(group.getRank(), rank);
    EXPECT_EQ(group.getSize(), 2);
    // 0.5 and 0.25 steps: every sum is exact in float.
    return AllReduceSum(group, at::arange(16, at::kFloat) * (rank == 0 ? 0.5 : 0.25) + rank);
  });
  const at::Tensor expected = at::arange(16, at::kFloat) * 0.75 + 1;
  for (const auto& sum : sums) EXPECT_TRUE(at::equal(sum, expected)) << sum;
}

TEST(GlooTest, AllReducesInt64BeyondThirtyTwoBits) {
  const int64_t big = int64_t{1} << 40;
  const auto sums = OnRanks(2, [&](ProcessGroupGloo& group, int rank) {
    return AllReduceSum(group, at::full({7}, rank == 0 ? big + 3 : -5, at::kLong));
  });
  for (const auto& sum : sums) {
    EXPECT_EQ(sum.scalar_type(), at::kLong);
    EXPECT_TRUE(at::equal(sum, at::full({7}, big - 2, at::kLong))) << sum;
  }
}

TEST(GlooTest, AllReducesAMillionFloats) {
  constexpr int64_t n = 1 << 20;
  const auto sums = OnRanks(2, [&](ProcessGroupGloo& group, int rank) {
    // Integers below 2^24: their float sum is exact, whatever the order Gloo adds in.
    return AllReduceSum(group, at::arange(n, at::kFloat) * (rank + 1));
  });
  const at::Tensor expected = at::arange(n, at::kFloat) * 3;
  for (const auto& sum : sums) EXPECT_TRUE(at::equal(sum, expected));
}

TEST(GlooTest, BarrierWaitsForEveryRank) {
  std::atomic<bool> late_rank_arrived{false};
  const auto seen = OnRanks(
      2,
      [&](ProcessGroupGloo& group, int rank) {
        if (rank == 1) {
          std::this_thread::sleep_for(milliseconds(200));
          late_rank_arrived = true;
        }
        group.barrier()->wait();
        return late_rank_arrived.load();
      },
      // The device LibTorch picks by itself (this host's name, else loopback).
      [] {
        auto options = ProcessGroupGloo::Options::create(kTimeout);
        options->devices.push_back(ProcessGroupGloo::createDefaultDevice());
        return options;
      });
  EXPECT_TRUE(seen[0]);
  EXPECT_TRUE(seen[1]);
}

TEST(GlooTest, ACollectiveOneRankSkipsTimesOutAfterTheGroupsTimeout) {
  const milliseconds timeout{500};
  std::promise<void> rank0_done;
  auto rank0_done_future = rank0_done.get_future().share();
  const auto errors = OnRanks(
      2,
      [&](ProcessGroupGloo& group, int rank) -> std::string {
        EXPECT_EQ(group.getOptions()->timeout, timeout);
        if (rank == 1) {
          // Stays connected, without joining the all-reduce, until rank 0 has given up.
          rank0_done_future.wait_for(kTimeout);
          return "";
        }
        const auto start = std::chrono::steady_clock::now();
        std::string error = "no error";
        try {
          AllReduceSum(group, at::ones({4}));
        } catch (const std::exception& e) {
          error = e.what();
        }
        const auto waited = std::chrono::steady_clock::now() - start;
        rank0_done.set_value();
        EXPECT_GE(waited, timeout);
        EXPECT_LT(waited, timeout * 20);
        return error;
      },
      [&] { return LoopbackOptions(timeout); });
  EXPECT_THAT(errors[0], HasSubstr("Timed out"));
}

// gloo::rendezvous::Context with its protected fields in view, where the vendored gloo/context.h
// says they are.
class ContextLayoutProbe : public gloo::rendezvous::Context {
 public:
  using gloo::rendezvous::Context::Context;
  const std::shared_ptr<gloo::transport::Device>& device() const { return device_; }
  milliseconds timeout() const { return timeout_; }
};

// Gloo's own API under ProcessGroupGloo: the options and their inline templates, and the size of
// the context allocated here, come from the vendored headers and are read by the Gloo inside
// libtorch_cpu.so, which in turn calls the store back through gloo/rendezvous/store.h's vtable.
TEST(GlooTest, GlooItselfAllReducesThroughTheVendoredHeaders) {
  constexpr size_t n = 1000;
  const auto stores = LoopbackStores(2);
  const auto sums = OnThreads(2, [&](int rank) {
    auto device = ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
    EXPECT_THAT(device->str(), HasSubstr("127.0.0.1"));
    auto context = std::make_shared<ContextLayoutProbe>(rank, 2);
    context->setTimeout(kTimeout);
    context->connectFullMesh(std::make_shared<ProcessGroupGloo::GlooStore>(stores[rank]), device);
    EXPECT_EQ(context->rank, rank);
    EXPECT_EQ(context->size, 2);
    // Gloo's out-of-line accessors find the fields where the header puts them.
    EXPECT_EQ(&context->getDevice(), &context->device());
    EXPECT_EQ(context->device(), device);
    EXPECT_EQ(context->timeout(), kTimeout);
    std::vector<double> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<double>(i) * (rank + 1) + 0.5;
    gloo::AllreduceOptions options(context);
    options.setOutput(data.data(), data.size());
    options.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<double>));
    options.setTag(1);
    gloo::allreduce(options);
    return data;
  });
  for (const auto& sum : sums) {
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(sum[i], static_cast<double>(i) * 3 + 1) << i;
  }
}

}  // namespace
}  // namespace spnas
