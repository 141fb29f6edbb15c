// CUDA RoIAlign. One thread per output element in the forward pass, one per output-gradient
// element in the backward pass (which scatters with atomics). Sample points, bilinear weights
// and border rules are those of the CPU kernel (roi_align_cpu.cc), with the geometry rounded
// the same way, so both devices sample the same points. Values accumulate in float (double for
// double inputs).
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/core/ScalarType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <limits>

#include "spnas/ops/roi_align/roi_align_cuda.h"

namespace spnas::ops {
namespace {

constexpr int kThreads = 256;

// Products rounded on their own, as on the CPU: nvcc would otherwise fuse a product with the
// sum that follows into an fma, and a sample point one rounding away from a pixel border or
// from the feature map's edge could then fall on the other side of it.
__device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float Ceil(float a) { return ceilf(a); }
__device__ __forceinline__ double Ceil(double a) { return ceil(a); }

template <typename acc_t>
struct Roi {
  int64_t batch;
  acc_t start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  acc_t count;  // samples per bin, at least 1
};

template <typename T, typename acc_t>
__device__ __forceinline__ Roi<acc_t> LoadRoi(const T* roi, double spatial_scale, int64_t pooled_height,
                                              int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  Roi<acc_t> r;
  r.batch = static_cast<int64_t>(static_cast<acc_t>(roi[0]));
  // The CPU scales in double and rounds once to the tensor's type.
  const double offset = aligned ? 0.5 : 0.0;
  r.start_w = static_cast<acc_t>(Mul(static_cast<double>(static_cast<acc_t>(roi[1])), spatial_scale) - offset);
  r.start_h = static_cast<acc_t>(Mul(static_cast<double>(static_cast<acc_t>(roi[2])), spatial_scale) - offset);
  const acc_t end_w = static_cast<acc_t>(Mul(static_cast<double>(static_cast<acc_t>(roi[3])), spatial_scale) - offset);
  const acc_t end_h = static_cast<acc_t>(Mul(static_cast<double>(static_cast<acc_t>(roi[4])), spatial_scale) - offset);
  acc_t roi_w = end_w - r.start_w;
  acc_t roi_h = end_h - r.start_h;
  if (!aligned) {  // legacy mode: RoIs are at least one pixel wide
    roi_w = roi_w < acc_t(1) ? acc_t(1) : roi_w;
    roi_h = roi_h < acc_t(1) ? acc_t(1) : roi_h;
  }
  r.bin_h = roi_h / static_cast<acc_t>(pooled_height);
  r.bin_w = roi_w / static_cast<acc_t>(pooled_width);
  // A non-finite RoI samples one point per bin, outside the map: zeros, not a grid of 2^63.
  const bool finite = isfinite(r.bin_h) && isfinite(r.bin_w);
  r.grid_h = sampling_ratio > 0 ? sampling_ratio : finite ? static_cast<int64_t>(Ceil(r.bin_h)) : 1;
  r.grid_w = sampling_ratio > 0 ? sampling_ratio : finite ? static_cast<int64_t>(Ceil(r.bin_w)) : 1;
  const int64_t count = r.grid_h * r.grid_w;
  r.count = static_cast<acc_t>(count > 1 ? count : int64_t{1});
  return r;
}

// Coordinate of sample `i` of `grid` in bin `bin` along one axis.
template <typename acc_t>
__device__ __forceinline__ acc_t SampleCoordinate(acc_t start, acc_t bin_size, int64_t bin, int64_t i, int64_t grid) {
  const acc_t within = static_cast<acc_t>(static_cast<float>(i) + .5f);
  return start + Mul(static_cast<acc_t>(bin), bin_size) + Mul(within, bin_size) / static_cast<acc_t>(grid);
}

// One axis of a bilinear sample inside the map (or at most one pixel outside): the two pixel
// indices, clamped to the map, and the weight of the upper one.
template <typename acc_t>
__device__ __forceinline__ void Axis(acc_t v, int size, int* low, int* high, acc_t* frac) {
  if (v <= acc_t(0)) v = acc_t(0);
  *low = static_cast<int>(v);
  if (*low >= size - 1) {
    *low = *high = size - 1;
    v = static_cast<acc_t>(*low);
  } else {
    *high = *low + 1;
  }
  *frac = v - static_cast<acc_t>(*low);
}

template <typename acc_t, typename index_t>
struct Corners {
  index_t p1, p2, p3, p4;  // offsets into one H x W plane
  acc_t w1, w2, w3, w4;
};

template <typename acc_t, typename index_t>
__device__ __forceinline__ bool Bilinear(acc_t y, acc_t x, int height, int width, Corners<acc_t, index_t>* c) {
  // A point more than one pixel outside the map contributes nothing; so does a NaN one, which
  // fails every comparison and must not reach the index casts.
  if (!(y >= acc_t(-1) && y <= static_cast<acc_t>(height) && x >= acc_t(-1) && x <= static_cast<acc_t>(width))) {
    return false;
  }
  int y_low, y_high, x_low, x_high;
  acc_t ly, lx;
  Axis(y, height, &y_low, &y_high, &ly);
  Axis(x, width, &x_low, &x_high, &lx);
  const acc_t hy = acc_t(1) - ly, hx = acc_t(1) - lx;
  c->p1 = static_cast<index_t>(y_low) * width + x_low;
  c->p2 = static_cast<index_t>(y_low) * width + x_high;
  c->p3 = static_cast<index_t>(y_high) * width + x_low;
  c->p4 = static_cast<index_t>(y_high) * width + x_high;
  c->w1 = hy * hx;
  c->w2 = hy * lx;
  c->w3 = ly * hx;
  c->w4 = ly * lx;
  return true;
}

struct Shape {
  int64_t batch_size, channels;
  int height, width;
  int64_t pooled_height, pooled_width;
};

// index = ((k * C + c) * PH + ph) * PW + pw, the layout of the output.
template <typename index_t>
__device__ __forceinline__ void Decode(index_t index, const Shape& s, index_t* k, index_t* c, index_t* ph,
                                       index_t* pw) {
  const index_t pooled_w = static_cast<index_t>(s.pooled_width);
  const index_t pooled_h = static_cast<index_t>(s.pooled_height);
  const index_t channels = static_cast<index_t>(s.channels);
  *pw = index % pooled_w;
  index /= pooled_w;
  *ph = index % pooled_h;
  index /= pooled_h;
  *c = index % channels;
  *k = index / channels;
}

template <typename T, typename acc_t, typename index_t>
__global__ void __launch_bounds__(kThreads)
    ForwardKernel(const T* __restrict__ input, const T* __restrict__ rois, index_t total, Shape s, double spatial_scale,
                  int64_t sampling_ratio, bool aligned, T* __restrict__ output) {
  const int64_t linear = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (linear >= total) return;
  const index_t index = static_cast<index_t>(linear);
  index_t k, c, ph, pw;
  Decode(index, s, &k, &c, &ph, &pw);
  const Roi<acc_t> r =
      LoadRoi<T, acc_t>(rois + k * 5, spatial_scale, s.pooled_height, s.pooled_width, sampling_ratio, aligned);
  acc_t sum = 0;
  // An RoI of a batch index that does not exist pools nothing, instead of reading outside.
  if (r.batch >= 0 && r.batch < s.batch_size) {
    const index_t plane_size = static_cast<index_t>(s.height) * s.width;
    const T* plane = input + (static_cast<index_t>(r.batch) * static_cast<index_t>(s.channels) + c) * plane_size;
    for (int64_t iy = 0; iy < r.grid_h; ++iy) {
      const acc_t y = SampleCoordinate(r.start_h, r.bin_h, ph, iy, r.grid_h);
      for (int64_t ix = 0; ix < r.grid_w; ++ix) {
        const acc_t x = SampleCoordinate(r.start_w, r.bin_w, pw, ix, r.grid_w);
        Corners<acc_t, index_t> q;
        if (!Bilinear(y, x, s.height, s.width, &q)) continue;
        sum += q.w1 * static_cast<acc_t>(plane[q.p1]) + q.w2 * static_cast<acc_t>(plane[q.p2]) +
               q.w3 * static_cast<acc_t>(plane[q.p3]) + q.w4 * static_cast<acc_t>(plane[q.p4]);
      }
    }
  }
  output[index] = static_cast<T>(sum / r.count);
}

// grad_input is in acc_t (float for half and bfloat16): atomics on it are native and the sums
// keep float precision until the single final rounding.
template <typename T, typename acc_t, typename index_t>
__global__ void __launch_bounds__(kThreads)
    BackwardKernel(const T* __restrict__ grad_output, const T* __restrict__ rois, index_t total, Shape s,
                   double spatial_scale, int64_t sampling_ratio, bool aligned, acc_t* __restrict__ grad_input) {
  const int64_t linear = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (linear >= total) return;
  const index_t index = static_cast<index_t>(linear);
  index_t k, c, ph, pw;
  Decode(index, s, &k, &c, &ph, &pw);
  const Roi<acc_t> r =
      LoadRoi<T, acc_t>(rois + k * 5, spatial_scale, s.pooled_height, s.pooled_width, sampling_ratio, aligned);
  if (r.batch < 0 || r.batch >= s.batch_size) return;
  const acc_t g = static_cast<acc_t>(grad_output[index]) / r.count;
  if (g == acc_t(0)) return;  // nothing to scatter
  const index_t plane_size = static_cast<index_t>(s.height) * s.width;
  acc_t* plane = grad_input + (static_cast<index_t>(r.batch) * static_cast<index_t>(s.channels) + c) * plane_size;
  for (int64_t iy = 0; iy < r.grid_h; ++iy) {
    const acc_t y = SampleCoordinate(r.start_h, r.bin_h, ph, iy, r.grid_h);
    for (int64_t ix = 0; ix < r.grid_w; ++ix) {
      const acc_t x = SampleCoordinate(r.start_w, r.bin_w, pw, ix, r.grid_w);
      Corners<acc_t, index_t> q;
      if (!Bilinear(y, x, s.height, s.width, &q)) continue;
      atomicAdd(plane + q.p1, g * q.w1);
      atomicAdd(plane + q.p2, g * q.w2);
      atomicAdd(plane + q.p3, g * q.w3);
      atomicAdd(plane + q.p4, g * q.w4);
    }
  }
}

int64_t Blocks(int64_t total) { return (total + kThreads - 1) / kThreads; }

// 32-bit index arithmetic (much cheaper on the GPU) whenever every offset fits.
bool Fits32(std::initializer_list<int64_t> sizes) {
  for (const int64_t n : sizes) {
    if (n > std::numeric_limits<int32_t>::max()) return false;
  }
  return true;
}

Shape MakeShape(int64_t batch_size, int64_t channels, int64_t height, int64_t width, int64_t pooled_height,
                int64_t pooled_width) {
  TORCH_CHECK(height <= std::numeric_limits<int>::max() && width <= std::numeric_limits<int>::max(),
              "roi_align: feature map of ", height, "x", width, " is too large");
  return Shape{batch_size, channels, static_cast<int>(height), static_cast<int>(width), pooled_height, pooled_width};
}

}  // namespace

at::Tensor RoiAlignForwardCuda(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                               int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input.is_cuda() && rois.is_cuda(), "roi_align: the CUDA kernel needs CUDA tensors, got ", input.device(),
              " and ", rois.device());
  const c10::cuda::CUDAGuard guard(input.device());
  const int64_t num_rois = rois.size(0);
  const Shape s = MakeShape(input.size(0), input.size(1), input.size(2), input.size(3), pooled_height, pooled_width);
  const int64_t total = num_rois * s.channels * pooled_height * pooled_width;
  // With no pixels every sample lies outside the map: all zeros, as on the CPU.
  if (total == 0 || input.numel() == 0) {
    return at::zeros({num_rois, s.channels, pooled_height, pooled_width}, input.options());
  }
  at::Tensor output = at::empty({num_rois, s.channels, pooled_height, pooled_width}, input.options());
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool fits32 = Fits32({total, input.numel(), rois.numel()});
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
    const scalar_t* in = input_c.const_data_ptr<scalar_t>();
    const scalar_t* boxes = rois_c.const_data_ptr<scalar_t>();
    scalar_t* out = output.mutable_data_ptr<scalar_t>();
    if (fits32) {
      ForwardKernel<scalar_t, acc_t, int32_t><<<Blocks(total), kThreads, 0, stream>>>(
          in, boxes, static_cast<int32_t>(total), s, spatial_scale, sampling_ratio, aligned, out);
    } else {
      ForwardKernel<scalar_t, acc_t, int64_t>
          <<<Blocks(total), kThreads, 0, stream>>>(in, boxes, total, s, spatial_scale, sampling_ratio, aligned, out);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return output;
}

at::Tensor RoiAlignBackwardCuda(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                                int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                                int64_t height, int64_t width, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(grad_output.is_cuda() && rois.is_cuda(),
              "roi_align backward: the CUDA kernel needs CUDA tensors, "
              "got ",
              grad_output.device(), " and ", rois.device());
  const c10::cuda::CUDAGuard guard(grad_output.device());
  const Shape s = MakeShape(batch_size, channels, height, width, pooled_height, pooled_width);
  const int64_t input_numel = batch_size * channels * height * width;
  if (grad_output.numel() == 0 || input_numel == 0) {
    return at::zeros({batch_size, channels, height, width}, grad_output.options());
  }
  const int64_t total = grad_output.numel();
  const at::Tensor grad_c = grad_output.contiguous();  // autograd may hand in an expanded gradient
  const at::Tensor rois_c = rois.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool fits32 = Fits32({total, input_numel, rois.numel()});
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
    at::Tensor acc = at::zeros({batch_size, channels, height, width},
                               grad_output.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    const scalar_t* grad = grad_c.const_data_ptr<scalar_t>();
    const scalar_t* boxes = rois_c.const_data_ptr<scalar_t>();
    acc_t* out = acc.mutable_data_ptr<acc_t>();
    if (fits32) {
      BackwardKernel<scalar_t, acc_t, int32_t><<<Blocks(total), kThreads, 0, stream>>>(
          grad, boxes, static_cast<int32_t>(total), s, spatial_scale, sampling_ratio, aligned, out);
    } else {
      BackwardKernel<scalar_t, acc_t, int64_t>
          <<<Blocks(total), kThreads, 0, stream>>>(grad, boxes, total, s, spatial_scale, sampling_ratio, aligned, out);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    grad_input = acc.scalar_type() == grad_output.scalar_type() ? acc : acc.to(grad_output.scalar_type());
  });
  return grad_input;
}

}  // namespace spnas::ops
