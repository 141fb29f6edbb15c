// The data-parallel pieces on an in-process store, ranks as threads: the group collective's sum
// (over Gloo, on loopback), its abort and heartbeat watch, the gradient reducer's buckets, and
// the worker's refusal of file names outside its folder.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <future>
#include <thread>

#include "spnas/distributed/group_collective.h"
#include "spnas/distributed/worker.h"
#include "spnas/trainers/gradient_reducer.h"

namespace spnas {
namespace {

using ::testing::HasSubstr;

constexpr std::chrono::milliseconds kTimeout{2000};

// Runs fn(rank) for ranks 0..n-1 at once and returns their results in rank order.
template <typename Fn>
auto OnRanks(int n, Fn fn) {
  std::vector<std::future<decltype(fn(0))>> futures;
  for (int r = 0; r < n; ++r) futures.push_back(std::async(std::launch::async, fn, r));
  std::vector<decltype(fn(0))> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

TEST(GroupCollectiveTest, EveryRankGetsTheSameSum) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  const auto sums = OnRanks(3, [&](int rank) {
    GroupCollective group(store, "g", rank, {0, 1, 2}, kTimeout);
    std::vector<at::Tensor> out;
    for (int call = 0; call < 3; ++call) {
      // Values whose float sum depends on the order (1e8 + 1 - 1e8), and a larger tensor.
      const double v = rank == 0 ? 1e8 : rank == 1 ? 1.0 : -1e8;
      out.push_back(group.AllReduceSum(at::full({4}, v + call, at::kFloat)));
    }
    out.push_back(group.AllReduceSum(at::arange(100000, at::kDouble) * (rank + 1)));
    return out;
  });
  for (int call = 0; call < 3; ++call) {
    // Whatever order the backend adds in, every rank gets the same bits.
    for (int rank = 1; rank < 3; ++rank) EXPECT_TRUE(at::equal(sums[rank][call], sums[0][call])) << rank << " " << call;
  }
  for (int rank = 0; rank < 3; ++rank) EXPECT_TRUE(at::equal(sums[rank][3], at::arange(100000, at::kDouble) * 6));
}

TEST(GroupCollectiveTest, AnAbortStopsTheOthersWithItsReason) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  const auto errors = OnRanks(2, [&](int rank) -> std::string {
    GroupCollective group(store, "g", rank, {0, 1}, kTimeout);
    if (rank == 1) {
      group.Abort("out of memory");
      return "";
    }
    try {
      group.Split("gradients")->AllReduceSum(at::ones({2}));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  });
  EXPECT_THAT(errors[0], HasSubstr("rank 1 gave up: out of memory"));
}

TEST(GroupCollectiveTest, ASilentRankIsGivenUpAfterTheTimeout) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  GroupCollective group(store, "g", 0, {0, 3}, std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  try {
    group.AllReduceSum(at::ones({2}));
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 3 sent no heartbeat for"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(GroupCollectiveTest, ARankThatBeatsIsWaitedFor) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  const auto sums = OnRanks(2, [&](int rank) {
    GroupCollective group(store, "g", rank, {0, 1}, std::chrono::milliseconds(300));
    if (rank == 1) {
      // Busy for longer than the timeout, beating meanwhile.
      for (int i = 0; i < 10; ++i) {
        store->add(BeatKey(1), 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    return group.AllReduceSum(at::full({1}, rank + 1.0, at::kDouble))[0].item<double>();
  });
  EXPECT_EQ(sums, (std::vector<double>{3, 3}));
}

// A job's file names are plain names, or the worker refuses the job.
TEST(WorkerTest, AJobNamingAPathOutsideTheWorkersFolderIsRefused) {
  EXPECT_TRUE(CheckJobFileName("model_3.pth").ok());
  EXPECT_TRUE(CheckJobFileName("").ok());  // joined to a prefix of the worker's own
  for (const std::string& name :
       std::vector<std::string>{"../../.bashrc", "/etc/passwd", "a/b.pth", "..", ".", std::string("a\0b", 3)}) {
    const Status status = CheckJobFileName(name);
    EXPECT_FALSE(status.ok()) << name;
    EXPECT_THAT(std::string(status.message()), HasSubstr("not a plain file name")) << name;
  }
}

// Buckets fill from the last parameter to the first and close at bucket_bytes or more.
TEST(GradientReducerTest, BucketsFollowTheBackwardPassAndCloseAtTheirSize) {
  using Buckets = std::vector<std::vector<size_t>>;
  // Elements of 4 bytes: 10 values are 40 bytes.
  EXPECT_EQ(AssignBuckets({10, 10, 10, 10}, 4, 80), (Buckets{{3, 2}, {1, 0}}));
  EXPECT_EQ(AssignBuckets({10, 10, 10, 10}, 4, 81), (Buckets{{3, 2, 1}, {0}}));
  EXPECT_EQ(AssignBuckets({100, 1, 1}, 4, 8), (Buckets{{2, 1}, {0}}));
  EXPECT_EQ(AssignBuckets({5}, 8, 1), (Buckets{{0}}));  // a parameter larger than a bucket: its own
  EXPECT_EQ(AssignBuckets({}, 4, 8), Buckets{});
}

// A little network's parameters, the same on every rank (from a generator of their own: the
// ranks are threads of one process).
std::vector<at::Tensor> Params() {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
  std::vector<at::Tensor> params;
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{3, 5}, {5}, {5, 2}, {7}}) {
    params.push_back(at::randn(shape, generator).requires_grad_());
  }
  return params;
}

// Two ranks' gradients of the same little network, with one parameter the loss does not use.
TEST(GradientReducerTest, EachRankGetsTheSumOfTheRanksGradients) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  const auto grads = OnRanks(2, [&](int rank) {
    std::vector<at::Tensor> params = Params();
    auto group = std::make_shared<GroupCollective>(store, "g", rank, std::vector<int>{0, 1}, kTimeout);
    // Buckets of at most a few values, so that several go while the backward pass runs.
    GradientReducer reducer(params, group->Split("gradients"), /*bucket_bytes=*/24);
    std::vector<std::vector<at::Tensor>> steps;
    for (int step = 0; step < 2; ++step) {
      const at::Tensor x = at::full({4, 3}, rank + 1.0 + step);
      for (auto& p : params) p.mutable_grad() = at::Tensor();
      reducer.Begin();
      ((x.matmul(params[0]) + params[1]).tanh().matmul(params[2])).pow(2).sum().backward();
      reducer.Finish();
      std::vector<at::Tensor> g;
      for (auto& p : params) g.push_back(p.grad().clone());
      steps.push_back(g);
    }
    return steps;
  });
  for (int step = 0; step < 2; ++step) {
    // The same sum computed here: each rank's own gradients, added.
    std::vector<at::Tensor> expected(4);
    for (int rank = 0; rank < 2; ++rank) {
      std::vector<at::Tensor> params = Params();
      const at::Tensor x = at::full({4, 3}, rank + 1.0 + step);
      ((x.matmul(params[0]) + params[1]).tanh().matmul(params[2])).pow(2).sum().backward();
      for (int i = 0; i < 3; ++i) expected[i] = rank == 0 ? params[i].grad() : expected[i] + params[i].grad();
    }
    expected[3] = at::zeros({7});
    for (int rank = 0; rank < 2; ++rank) {
      for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(at::allclose(grads[rank][step][i], expected[i], 1e-6, 1e-6)) << rank << " " << step << " " << i;
      }
    }
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(at::equal(grads[0][step][i], grads[1][step][i]));
  }
}

}  // namespace
}  // namespace spnas
