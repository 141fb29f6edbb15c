// LibTorch's NCCL backend (c10d::ProcessGroupNCCL, in libtorch_cuda.so) compiles against the
// wheel's nccl.h and links. No GPU is needed: only its options are made, by LibTorch's
// constructor, and read here where the header says their fields are (a layout that depends on
// nccl.h's version).
#include <gtest/gtest.h>
#include <nccl.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace spnas {
namespace {

TEST(ProcessGroupNcclTest, TheLoadedNcclIsTheVersionOfItsHeader) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_EQ(version, NCCL_VERSION_CODE);
}

TEST(ProcessGroupNcclTest, LibTorchsOptionsReadBackThroughTheHeader) {
  auto options = c10d::ProcessGroupNCCL::Options::create(/*is_high_priority_stream=*/true);
  EXPECT_TRUE(options->is_high_priority_stream);
  EXPECT_EQ(options->backend, "nccl");
  const ncclConfig_t defaults = NCCL_CONFIG_INITIALIZER;
  EXPECT_EQ(options->config.size, sizeof(ncclConfig_t));
  EXPECT_EQ(options->config.magic, defaults.magic);
  EXPECT_EQ(options->split_color, NCCL_SPLIT_NOCOLOR - 1);
  EXPECT_FALSE(options->split_from);
}

}  // namespace
}  // namespace spnas
