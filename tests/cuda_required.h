// The CUDA tests skip, visibly, on a machine without a usable GPU, except where SPNAS_REQUIRE_CUDA=1
// (set by the GPU check, tools/gpu_check_run.sh): there a missing GPU fails them, so that a
// broken driver or a CPU-only LibTorch cannot pass as a clean run.
#ifndef SPNAS_TESTS_CUDA_REQUIRED_H_
#define SPNAS_TESTS_CUDA_REQUIRED_H_

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>

namespace spnas::testing {

inline bool CudaRequired() {
  const char* value = std::getenv("SPNAS_REQUIRE_CUDA");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace spnas::testing

// In a test body or SetUp.
#define SKIP_WITHOUT_CUDA()                                                                               \
  if (!torch::cuda::is_available()) {                                                                     \
    if (::spnas::testing::CudaRequired()) GTEST_FAIL() << "no usable CUDA device (SPNAS_REQUIRE_CUDA=1)"; \
    GTEST_SKIP() << "no CUDA device";                                                                     \
  }

#endif  // SPNAS_TESTS_CUDA_REQUIRED_H_
