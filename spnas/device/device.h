// The device a run computes on, and what spnas measures there.
#ifndef SPNAS_DEVICE_DEVICE_H_
#define SPNAS_DEVICE_DEVICE_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>

#include "spnas/core/status.h"

namespace spnas {

// "cpu", "cuda" (GPU 0) or "cuda:N", checked against the GPUs of this machine: asking for one
// that is not there is an error naming how many there are.
StatusOr<c10::Device> ResolveDevice(const std::string& name);
// What "cuda" without an index means from now on: cuda:(local_rank mod the GPUs visible), one
// GPU per process of a distributed run (several processes share a GPU when there are more).
// Also makes that GPU the current one, as torchvision's reference scripts do, so that a rank
// opens no context on GPU 0 unless it is its own.
void SetLocalRank(int local_rank);

// A random generator on `device` seeded with `seed`: draws on a GPU come from a GPU generator,
// without a copy from the host.
at::Generator MakeGenerator(const c10::Device& device, uint64_t seed);

// Host-to-device copies made on one thread (a data loader's worker) for use on another (the
// training loop). On CUDA they come from pinned memory, asynchronously, on a side stream; the
// consumer's Ready() makes its current stream wait for them alone, on the device, not on the
// host. On the CPU, Copy returns its argument and Ready does nothing.
class DeviceUpload {
 public:
  explicit DeviceUpload(const c10::Device& device);
  ~DeviceUpload();
  at::Tensor Copy(const at::Tensor& host);
  // Called by the consumer before the first use of the copies.
  void Ready();

 private:
  struct Cuda;
  c10::Device device_;
  std::unique_ptr<Cuda> cuda_;
};

// Waits for the work queued on `device` (CUDA runs asynchronously); nothing on the CPU.
void Synchronize(const c10::Device& device);

// Peak memory of `device` since the last ResetPeakMemory: on CUDA the caching allocator's peak
// of allocated bytes; -1 on the CPU, where there is no allocator-level measure.
void ResetPeakMemory(const c10::Device& device);
int64_t PeakMemoryBytes(const c10::Device& device);

// Peak bytes allocated on `device` above the level at construction, while the meter lives: on
// CUDA from the caching allocator's statistics (so one meter per device at a time); on the CPU
// from LibTorch's allocator reports for this thread and the work it hands on (autograd's
// backward), so other threads' allocations do not count.
class PeakMemoryMeter {
 public:
  explicit PeakMemoryMeter(const c10::Device& device);
  ~PeakMemoryMeter();
  PeakMemoryMeter(const PeakMemoryMeter&) = delete;
  PeakMemoryMeter& operator=(const PeakMemoryMeter&) = delete;
  int64_t PeakBytes() const;

 private:
  struct CpuReports;
  c10::Device device_;
  int64_t start_ = 0;
  std::shared_ptr<CpuReports> cpu_;
  std::shared_ptr<void> guard_;  // keeps the CPU reports installed on this thread
};

// Hands the memory the caching allocator keeps back to CUDA (after an out-of-memory trial).
void ReleaseCachedMemory(const c10::Device& device);

// Makes the C library keep freed CPU memory for reuse instead of giving every large block back
// to the kernel: LibTorch's CPU allocator asks malloc for each activation, and a detector's
// activations are past malloc's mmap threshold, so each one costs fresh zeroed pages (about a
// third of a ResNet-50 FPN inference on 2 cores). Call once at start-up; the process then
// holds on to its peak CPU memory.
void KeepCpuMemoryForReuse();

}  // namespace spnas

#endif  // SPNAS_DEVICE_DEVICE_H_
