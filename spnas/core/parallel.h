// ParallelFor: at::parallel_for for spnas's own parallel loops, checkable by ThreadSanitizer.
// LibTorch's pool is OpenMP, whose synchronisation happens in an uninstrumented runtime: TSan
// cannot see it, and would either report every loop or, with the pool off, check nothing.
// Under TSan the same chunks run on std::threads (at least two), which TSan follows, so a race
// between two chunks of a loop body is reported.
#ifndef SPNAS_CORE_PARALLEL_H_
#define SPNAS_CORE_PARALLEL_H_

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define SPNAS_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPNAS_THREAD_SANITIZER 1
#endif
#endif

namespace spnas {

// Calls f(chunk_begin, chunk_end) over [begin, end) in chunks of at least `grain`, in parallel.
template <typename F>
void ParallelFor(int64_t begin, int64_t end, int64_t grain, const F& f) {
#ifdef SPNAS_THREAD_SANITIZER
  if (end <= begin) return;
  const int64_t threads = std::max(2, at::get_num_threads());
  const int64_t chunk = std::max<int64_t>(std::max<int64_t>(grain, 1), (end - begin + threads - 1) / threads);
  std::vector<std::thread> workers;
  for (int64_t b = begin; b < end; b += chunk)
    workers.emplace_back([&f, b, end, chunk] { f(b, std::min(end, b + chunk)); });
  for (auto& w : workers) w.join();
#else
  at::parallel_for(begin, end, grain, f);
#endif
}

}  // namespace spnas

#endif  // SPNAS_CORE_PARALLEL_H_
