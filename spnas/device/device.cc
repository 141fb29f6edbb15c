#include "spnas/device/device.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <c10/core/Allocator.h>
#include <c10/core/Event.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <regex>

namespace spnas {

namespace {
std::atomic<int> local_rank{0};
}  // namespace

void SetLocalRank(int rank) {
  local_rank = rank;
  const int count = c10::cuda::device_count();
  if (count > 0) c10::cuda::set_device(static_cast<c10::DeviceIndex>(rank % count));
}

at::Generator MakeGenerator(const c10::Device& device, uint64_t seed) {
  at::Generator generator = device.is_cpu() ? at::make_generator<at::CPUGeneratorImpl>(seed)
                                            : at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(seed);
  return generator;
}

struct DeviceUpload::Cuda {
  c10::cuda::CUDAStream stream;
  c10::Event copied{c10::DeviceType::CUDA};
  std::vector<at::Tensor> tensors;
};

DeviceUpload::DeviceUpload(const c10::Device& device) : device_(device) {
  if (device.is_cuda()) cuda_.reset(new Cuda{c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())});
}

DeviceUpload::~DeviceUpload() = default;

at::Tensor DeviceUpload::Copy(const at::Tensor& host) {
  if (!cuda_ || !host.defined()) return host.defined() ? host.to(device_) : host;
  const c10::cuda::CUDAStreamGuard guard(cuda_->stream);
  // The caching host allocator keeps the pinned buffer until the copy that reads it is done.
  at::Tensor copy = host.pin_memory().to(device_, /*non_blocking=*/true);
  cuda_->tensors.push_back(copy);
  cuda_->copied.record(cuda_->stream);
  return copy;
}

void DeviceUpload::Ready() {
  if (!cuda_ || cuda_->tensors.empty()) return;
  const c10::Stream compute = c10::cuda::getCurrentCUDAStream(device_.index());
  cuda_->copied.block(compute);
  // Made on the side stream, used on the compute stream: the allocator must not reuse their
  // memory before the compute stream is done with them.
  for (at::Tensor& t : cuda_->tensors) t.record_stream(compute);
  cuda_->tensors.clear();
}

StatusOr<c10::Device> ResolveDevice(const std::string& name) {
  static const std::regex kForm("(cpu|cuda)(?::([0-9]{1,4}))?");
  std::smatch m;
  if (!std::regex_match(name, m, kForm) || (m[1] == "cpu" && m[2].matched)) {
    return InvalidArgumentError("device must be \"cpu\", \"cuda\" or \"cuda:N\", got \"", name, "\"");
  }
  if (m[1] == "cpu") return c10::Device(c10::kCPU);
  const int count = c10::cuda::device_count();
  const int index = m[2].matched ? std::stoi(m[2].str()) : count > 0 ? local_rank % count : 0;
  if (count == 0) {
    return FailedPreconditionError("device \"", name,
                                   "\" asked for, but this machine has no CUDA device "
                                   "(0 GPUs visible to the driver); use device \"cpu\"");
  }
  if (index >= count) {
    return FailedPreconditionError("device \"", name, "\" asked for, but this machine has ", count, " CUDA device",
                                   count == 1 ? "" : "s", " (cuda:0", count > 1 ? StrCat("..cuda:", count - 1) : "",
                                   ")");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void Synchronize(const c10::Device& device) {
  if (!device.is_cuda()) return;
  const c10::cuda::CUDAGuard guard(device);
  c10::cuda::device_synchronize();
}

void ResetPeakMemory(const c10::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}

int64_t PeakMemoryBytes(const c10::Device& device) {
  if (!device.is_cuda()) return -1;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

// LibTorch's CPU allocator reports each allocation and free to the memory profiler installed in
// the thread's debug info; this one keeps the running total and its peak.
struct PeakMemoryMeter::CpuReports : c10::MemoryReportingInfoBase {
  std::atomic<int64_t> current{0}, peak{0};
  void reportMemoryUsage(void*, int64_t bytes, size_t, size_t, c10::Device device) override {
    if (!device.is_cpu()) return;
    const int64_t now = current.fetch_add(bytes) + bytes;
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
};

PeakMemoryMeter::PeakMemoryMeter(const c10::Device& device) : device_(device) {
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    start_ = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
    return;
  }
  cpu_ = std::make_shared<CpuReports>();
  guard_ = std::make_shared<c10::DebugInfoGuard>(c10::DebugInfoKind::PROFILER_STATE, cpu_);
}

PeakMemoryMeter::~PeakMemoryMeter() = default;

int64_t PeakMemoryMeter::PeakBytes() const {
  if (device_.is_cuda()) return std::max<int64_t>(0, PeakMemoryBytes(device_) - start_);
  return cpu_->peak.load();
}

void ReleaseCachedMemory(const c10::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
}

void KeepCpuMemoryForReuse() {
  mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, reused after free
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and not trimmed back to the kernel
  mallopt(M_TOP_PAD, 256 << 20);       // grow the heap in large steps
}

}  // namespace spnas
