// CUDA NMS. Boxes are sorted by score; one kernel marks, for each box, the lower-scoring boxes
// it suppresses (one bit each, 64 boxes a word); a second kernel, one block, walks the boxes in
// score order and keeps those no kept box has suppressed. The walk stays on the device: only
// the number kept comes back to the host. IoU is computed as the CPU kernel computes it (same
// operations, same rounding), so both devices keep the same boxes.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <tuple>

#include "spnas/ops/nms/nms_cuda.h"

namespace spnas::ops {
namespace {

constexpr int kWord = 64;  // boxes per mask word, and threads per mask block
constexpr int kReduceThreads = 256;
// The reduction keeps its "suppressed" bits in shared memory up to this many words (the
// default 48 KiB per block, less the diagonal words), in global memory beyond.
constexpr int64_t kSharedWords = 48 * 1024 / 8 - kWord;

// Rounded on its own, as on the CPU: an fma of w * h with the union's sum would round the IoU
// differently, and an IoU at the threshold could then fall on the other side of it.
__device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }

// std::min / std::max, NaNs included.
template <typename T>
__device__ __forceinline__ T Min(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
__device__ __forceinline__ T Max(T a, T b) {
  return a < b ? b : a;
}

// mask[i * col_blocks + w], bit j: box i suppresses box 64 w + j (boxes in score order, i < j).
// Only words at or right of the diagonal are written: the reduction reads no others.
template <typename T, typename acc_t>
__global__ void __launch_bounds__(kWord) MaskKernel(const T* __restrict__ boxes, int64_t n, int64_t col_blocks,
                                                    double iou_threshold, uint64_t* __restrict__ mask) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (col_block < row_block) return;
  __shared__ acc_t cols[kWord][5];  // x1, y1, x2, y2, area
  const int64_t col_start = col_block * kWord, row_start = row_block * kWord;
  const int col_count = static_cast<int>(n - col_start < kWord ? n - col_start : kWord);
  const int row_count = static_cast<int>(n - row_start < kWord ? n - row_start : kWord);
  const int t = threadIdx.x;
  if (t < col_count) {
    const T* b = boxes + (col_start + t) * 4;
    for (int d = 0; d < 4; ++d) cols[t][d] = static_cast<acc_t>(b[d]);
    cols[t][4] = Mul(cols[t][2] - cols[t][0], cols[t][3] - cols[t][1]);
  }
  __syncthreads();
  if (t >= row_count) return;
  const T* b = boxes + (row_start + t) * 4;
  const acc_t x1 = static_cast<acc_t>(b[0]), y1 = static_cast<acc_t>(b[1]);
  const acc_t x2 = static_cast<acc_t>(b[2]), y2 = static_cast<acc_t>(b[3]);
  const acc_t area = Mul(x2 - x1, y2 - y1);
  uint64_t bits = 0;
  for (int j = row_block == col_block ? t + 1 : 0; j < col_count; ++j) {
    const acc_t w = Max(acc_t(0), Min(x2, cols[j][2]) - Max(x1, cols[j][0]));
    const acc_t h = Max(acc_t(0), Min(y2, cols[j][3]) - Max(y1, cols[j][1]));
    const acc_t inter = Mul(w, h);
    const acc_t iou = inter / (area + cols[j][4] - inter);
    // Compared in double, like the CPU's T-against-double comparison.
    if (static_cast<double>(iou) > iou_threshold) bits |= uint64_t{1} << j;
  }
  mask[(row_start + t) * col_blocks + col_block] = bits;
}

// One block. For each word of 64 boxes in score order: the boxes not yet suppressed are kept
// one by one (a kept box may suppress later ones of the same word), then all threads merge the
// kept boxes' rows into the suppressed bits of the words to the right.
// kept[0, count) = positions (in score order) of the kept boxes; kept[n] = count.
__global__ void __launch_bounds__(kReduceThreads)
    ReduceKernel(const uint64_t* __restrict__ mask, int64_t n, int64_t col_blocks, uint64_t* removed_global,
                 int64_t* __restrict__ kept) {
  extern __shared__ uint64_t shared[];
  uint64_t* diagonal = shared;
  uint64_t* removed = removed_global != nullptr ? removed_global : shared + kWord;
  for (int64_t w = threadIdx.x; w < col_blocks; w += blockDim.x) removed[w] = 0;
  int64_t count = 0;  // the same in every thread
  for (int64_t word = 0; word < col_blocks; ++word) {
    const int64_t start = word * kWord;
    const int in_word = static_cast<int>(n - start < kWord ? n - start : kWord);
    if (threadIdx.x < in_word) diagonal[threadIdx.x] = mask[(start + threadIdx.x) * col_blocks + word];
    __syncthreads();  // the diagonal, and the previous word's updates of `removed`
    uint64_t suppressed = removed[word];
    uint64_t keep = 0;
    for (int j = 0; j < in_word; ++j) {
      if (!((suppressed >> j) & 1)) {
        keep |= uint64_t{1} << j;
        suppressed |= diagonal[j];
      }
    }
    if (threadIdx.x == 0) {
      int64_t next = count;
      for (uint64_t rest = keep; rest != 0; rest &= rest - 1) kept[next++] = start + __ffsll(rest) - 1;
    }
    count += __popcll(keep);
    // Each thread owns the words w = threadIdx.x (mod blockDim.x): no two threads write the
    // same word, and none writes the word just read.
    for (int64_t w = word + 1 + threadIdx.x; w < col_blocks; w += blockDim.x) {
      uint64_t merged = 0;
      for (uint64_t rest = keep; rest != 0; rest &= rest - 1) {
        merged |= mask[(start + __ffsll(rest) - 1) * col_blocks + w];
      }
      removed[w] |= merged;
    }
    __syncthreads();  // before the next word overwrites the diagonal
  }
  if (threadIdx.x == 0) kept[n] = count;
}

}  // namespace

at::Tensor NmsCuda(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  TORCH_CHECK(boxes.is_cuda() && scores.is_cuda(), "nms: the CUDA kernel needs CUDA tensors, got ", boxes.device(),
              " and ", scores.device());
  const c10::cuda::CUDAGuard guard(boxes.device());
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const int64_t col_blocks = (n + kWord - 1) / kWord;
  TORCH_CHECK(col_blocks <= 65535, "nms: at most ", 65535 * kWord, " boxes on CUDA, got ", n);
  // Stable: equal scores keep their input order, as on the CPU.
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const at::Tensor sorted = boxes.index_select(0, order).contiguous();
  at::Tensor mask = at::empty({n * col_blocks}, boxes.options().dtype(at::kLong));
  at::Tensor kept = at::empty({n + 1}, boxes.options().dtype(at::kLong));
  const bool removed_in_shared = col_blocks <= kSharedWords;
  at::Tensor removed;
  if (!removed_in_shared) removed = at::empty({col_blocks}, boxes.options().dtype(at::kLong));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  uint64_t* mask_ptr = reinterpret_cast<uint64_t*>(mask.mutable_data_ptr<int64_t>());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, boxes.scalar_type(), "nms_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
    const dim3 blocks(static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks));
    MaskKernel<scalar_t, acc_t>
        <<<blocks, kWord, 0, stream>>>(sorted.const_data_ptr<scalar_t>(), n, col_blocks, iou_threshold, mask_ptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  const size_t shared_bytes = (kWord + (removed_in_shared ? col_blocks : 0)) * sizeof(uint64_t);
  ReduceKernel<<<1, kReduceThreads, shared_bytes, stream>>>(
      mask_ptr, n, col_blocks,
      removed_in_shared ? nullptr : reinterpret_cast<uint64_t*>(removed.mutable_data_ptr<int64_t>()),
      kept.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t count = kept.select(0, n).item<int64_t>();  // waits for the kernels
  return order.index_select(0, kept.narrow(0, 0, count));
}

}  // namespace spnas::ops
