// Loads a golden fixture written by tools/golden/*.py (a plain dict of tensors, zip format).
#ifndef SPNAS_TESTS_FIXTURE_H_
#define SPNAS_TESTS_FIXTURE_H_

#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/serialize.h>

namespace spnas::testing {

inline std::map<std::string, at::Tensor> LoadFixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fixture not found: " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const c10::IValue value = torch::pickle_load(bytes);
  std::map<std::string, at::Tensor> out;
  for (const auto& entry : value.toGenericDict()) {
    out[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return out;
}

// The message of the c10::Error that f throws (without the backtrace), or "no error".
inline std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

// Autocast on the CPU to bfloat16 while alive, as the trainer's mixed precision sets it.
class CpuAutocast {
 public:
  CpuAutocast() {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  }
  ~CpuAutocast() {
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
  }
  CpuAutocast(const CpuAutocast&) = delete;
  CpuAutocast& operator=(const CpuAutocast&) = delete;
};

}  // namespace spnas::testing

#endif  // SPNAS_TESTS_FIXTURE_H_
