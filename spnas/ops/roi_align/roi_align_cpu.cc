// CPU kernels. Sampling points and bilinear weights follow torchvision's roi_align_kernel.cpp
// exactly (same arithmetic order, so results agree to rounding). Both directions run in
// parallel: the forward over RoIs, the backward over channel ranges, where each thread owns its
// channels of the gradient and so needs no atomics.
// RoiAlignForward / RoiAlignBackward check the inputs, then hand CUDA tensors to the CUDA
// kernels (roi_align_cuda.cu) when the build has them.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "spnas/core/parallel.h"
#include "spnas/ops/roi_align/roi_align.h"
#ifdef SPNAS_WITH_CUDA
#include "spnas/ops/roi_align/roi_align_cuda.h"
#endif

namespace spnas::ops {
namespace {

template <typename T>
struct Sample {
  int64_t pos1, pos2, pos3, pos4;  // offsets into one H x W plane
  T w1, w2, w3, w4;
};

struct RoiGeometry {
  int64_t batch_index;
  int64_t grid_h, grid_w;
  double count;
};

// Bilinear sample points of one RoI, bin by bin: pooled_h * pooled_w * grid_h * grid_w entries.
template <typename T>
RoiGeometry PrecomputeSamples(const T* roi, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                              int64_t sampling_ratio, bool aligned, int64_t height, int64_t width,
                              std::vector<Sample<T>>* samples) {
  RoiGeometry g;
  g.batch_index = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
  const T roi_start_w = roi[1] * spatial_scale - offset;
  const T roi_start_h = roi[2] * spatial_scale - offset;
  const T roi_end_w = roi[3] * spatial_scale - offset;
  const T roi_end_h = roi[4] * spatial_scale - offset;
  T roi_width = roi_end_w - roi_start_w;
  T roi_height = roi_end_h - roi_start_h;
  if (!aligned) {
    roi_width = std::max(roi_width, static_cast<T>(1.));
    roi_height = std::max(roi_height, static_cast<T>(1.));
  }
  const T bin_size_h = static_cast<T>(roi_height) / static_cast<T>(pooled_height);
  const T bin_size_w = static_cast<T>(roi_width) / static_cast<T>(pooled_width);
  // A non-finite RoI samples one point per bin, outside the map: zeros, not a grid of 2^63.
  const bool finite = std::isfinite(bin_size_h) && std::isfinite(bin_size_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio
             : finite           ? static_cast<int64_t>(std::ceil(roi_height / pooled_height))
                                : 1;
  g.grid_w = sampling_ratio > 0 ? sampling_ratio
             : finite           ? static_cast<int64_t>(std::ceil(roi_width / pooled_width))
                                : 1;
  g.count = std::max(g.grid_h * g.grid_w, static_cast<int64_t>(1));

  samples->resize(pooled_height * pooled_width * g.grid_h * g.grid_w);
  int64_t index = 0;
  for (int64_t ph = 0; ph < pooled_height; ++ph) {
    for (int64_t pw = 0; pw < pooled_width; ++pw) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const T yy = roi_start_h + ph * bin_size_h + static_cast<T>(iy + .5f) * bin_size_h / static_cast<T>(g.grid_h);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const T xx = roi_start_w + pw * bin_size_w + static_cast<T>(ix + .5f) * bin_size_w / static_cast<T>(g.grid_w);
          Sample<T>& s = (*samples)[index++];
          T x = xx, y = yy;
          // Outside the feature map, or NaN (which fails every comparison): no contribution.
          if (!(y >= -1.0 && y <= height && x >= -1.0 && x <= width)) {
            s = Sample<T>{0, 0, 0, 0, 0, 0, 0, 0};
            continue;
          }
          if (y <= 0) y = 0;
          if (x <= 0) x = 0;
          int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
          if (y_low >= height - 1) {
            y_high = y_low = height - 1;
            y = static_cast<T>(y_low);
          } else {
            y_high = y_low + 1;
          }
          if (x_low >= width - 1) {
            x_high = x_low = width - 1;
            x = static_cast<T>(x_low);
          } else {
            x_high = x_low + 1;
          }
          const T ly = y - y_low, lx = x - x_low;
          const T hy = 1. - ly, hx = 1. - lx;
          s = Sample<T>{y_low * width + x_low,
                        y_low * width + x_high,
                        y_high * width + x_low,
                        y_high * width + x_high,
                        hy * hx,
                        hy * lx,
                        ly * hx,
                        ly * lx};
        }
      }
    }
  }
  return g;
}

// Channels-last kernels: the four corners of a sample point are rows of C contiguous values, so
// the inner loops run over channels and vectorise; the summation order of each output element
// is the same as torchvision's.
template <typename T>
void ForwardKernel(const T* input_nhwc, const T* rois, int64_t num_rois, double spatial_scale, int64_t channels,
                   int64_t height, int64_t width, int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                   bool aligned, T* output) {
  const int64_t bins = pooled_height * pooled_width;
  ParallelFor(0, num_rois, 1, [&](int64_t begin, int64_t end) {
    std::vector<Sample<T>> samples;
    std::vector<T> acc(bins * channels);
    for (int64_t n = begin; n < end; ++n) {
      const RoiGeometry g = PrecomputeSamples(rois + n * 5, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                                              aligned, height, width, &samples);
      const int64_t per_bin = g.grid_h * g.grid_w;
      const T* image = input_nhwc + g.batch_index * height * width * channels;
      std::fill(acc.begin(), acc.end(), T(0));
      const Sample<T>* s = samples.data();
      for (int64_t bin = 0; bin < bins; ++bin) {
        T* a = acc.data() + bin * channels;
        for (int64_t k = 0; k < per_bin; ++k, ++s) {
          const T* p1 = image + s->pos1 * channels;
          const T* p2 = image + s->pos2 * channels;
          const T* p3 = image + s->pos3 * channels;
          const T* p4 = image + s->pos4 * channels;
          const T w1 = s->w1, w2 = s->w2, w3 = s->w3, w4 = s->w4;
          for (int64_t c = 0; c < channels; ++c) a[c] += w1 * p1[c] + w2 * p2[c] + w3 * p3[c] + w4 * p4[c];
        }
      }
      T* out = output + n * channels * bins;
      const T count = static_cast<T>(g.count);
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t bin = 0; bin < bins; ++bin) out[c * bins + bin] = acc[bin * channels + c] / count;
      }
    }
  });
}

// grad_bins: [K, bins, C] (the output gradient, channels last); grad_input_nhwc: [N, H, W, C].
// Threads own disjoint channel ranges, so no two write the same value.
template <typename T>
void BackwardKernel(const T* grad_bins, const T* rois, int64_t num_rois, double spatial_scale, int64_t channels,
                    int64_t height, int64_t width, int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                    bool aligned, T* grad_input_nhwc) {
  const int64_t bins = pooled_height * pooled_width;
  // Sample points are shared by all channels: compute them once per RoI.
  std::vector<std::vector<Sample<T>>> samples(num_rois);
  std::vector<RoiGeometry> geometry(num_rois);
  ParallelFor(0, num_rois, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      geometry[n] = PrecomputeSamples(rois + n * 5, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                                      height, width, &samples[n]);
    }
  });
  const int threads = std::max(1, at::get_num_threads());
  const int64_t block = std::max<int64_t>(8, (channels + threads - 1) / threads);
  const int64_t blocks = (channels + block - 1) / block;
  ParallelFor(0, blocks, 1, [&](int64_t b_begin, int64_t b_end) {
    std::vector<T> g(block);
    for (int64_t b = b_begin; b < b_end; ++b) {
      const int64_t c0 = b * block, cn = std::min(channels, c0 + block) - c0;
      for (int64_t n = 0; n < num_rois; ++n) {
        const RoiGeometry& geo = geometry[n];
        const int64_t per_bin = geo.grid_h * geo.grid_w;
        T* image = grad_input_nhwc + geo.batch_index * height * width * channels + c0;
        const Sample<T>* s = samples[n].data();
        const T count = static_cast<T>(geo.count);
        for (int64_t bin = 0; bin < bins; ++bin) {
          const T* grad = grad_bins + (n * bins + bin) * channels + c0;
          for (int64_t c = 0; c < cn; ++c) g[c] = grad[c] / count;
          for (int64_t k = 0; k < per_bin; ++k, ++s) {
            if (s->w1 == 0 && s->w2 == 0 && s->w3 == 0 && s->w4 == 0) continue;
            T* d1 = image + s->pos1 * channels;
            T* d2 = image + s->pos2 * channels;
            T* d3 = image + s->pos3 * channels;
            T* d4 = image + s->pos4 * channels;
            // One loop per corner: corners may share a row (at the map's border), and each loop
            // has a single store stream, so it vectorises.
            const T* gc = g.data();
            for (int64_t c = 0; c < cn; ++c) d1[c] += gc[c] * s->w1;
            for (int64_t c = 0; c < cn; ++c) d2[c] += gc[c] * s->w2;
            for (int64_t c = 0; c < cn; ++c) d3[c] += gc[c] * s->w3;
            for (int64_t c = 0; c < cn; ++c) d4[c] += gc[c] * s->w4;
          }
        }
      }
    }
  });
}

void CheckRois(const at::Tensor& rois) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5,
              "roi_align: rois should be a [K, 5] tensor of "
              "(batch index, x1, y1, x2, y2), got ",
              rois.sizes());
}

// Tensors that reach the CPU kernels: those are instantiated for float and double only (the
// CUDA ones also take half and bfloat16).
void CheckCpu(const char* op, const at::Tensor& t) {
#ifndef SPNAS_WITH_CUDA
  TORCH_CHECK(!t.is_cuda(), op, ": got ", t.device(), " tensors, but this build has no CUDA kernels");
#endif
  TORCH_CHECK(t.device().is_cpu(), op, ": no kernel for ", t.device(), " tensors");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op,
              ": the CPU kernel takes float and double tensors, got ", t.scalar_type(),
              " (convert to float, or run on CUDA)");
}

}  // namespace

at::Tensor RoiAlignForward(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                           int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input.dim() == 4, "roi_align: input should be a [N, C, H, W] tensor, got ", input.sizes());
  CheckRois(rois);
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), "roi_align: input and rois should have the same dtype, got ",
              input.scalar_type(), " and ", rois.scalar_type());
  TORCH_CHECK(input.device() == rois.device(), "roi_align: input and rois should be on the same device, got ",
              input.device(), " and ", rois.device());
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "roi_align: output size should be positive, got ", pooled_height,
              "x", pooled_width);
#ifdef SPNAS_WITH_CUDA
  if (input.is_cuda()) {
    return RoiAlignForwardCuda(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned);
  }
#endif
  CheckCpu("roi_align", input);
  const int64_t channels = input.size(1), height = input.size(2), width = input.size(3);
  at::Tensor output = at::zeros({rois.size(0), channels, pooled_height, pooled_width}, input.options());
  if (output.numel() == 0) return output;
  const at::Tensor input_nhwc = input.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward", [&] {
    ForwardKernel<scalar_t>(input_nhwc.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), rois.size(0), spatial_scale,
                            channels, height, width, pooled_height, pooled_width, sampling_ratio, aligned,
                            output.data_ptr<scalar_t>());
  });
  return output;
}

at::Tensor RoiAlignBackward(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                            int64_t height, int64_t width, int64_t sampling_ratio, bool aligned) {
  CheckRois(rois);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) && grad_output.size(1) == channels &&
                  grad_output.size(2) == pooled_height && grad_output.size(3) == pooled_width,
              "roi_align backward: grad_output should be [", rois.size(0), ", ", channels, ", ", pooled_height, ", ",
              pooled_width, "], got ", grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == rois.scalar_type(),
              "roi_align backward: grad_output and rois should "
              "have the same dtype, got ",
              grad_output.scalar_type(), " and ", rois.scalar_type());
  TORCH_CHECK(grad_output.device() == rois.device(),
              "roi_align backward: grad_output and rois should be on "
              "the same device, got ",
              grad_output.device(), " and ", rois.device());
#ifdef SPNAS_WITH_CUDA
  if (grad_output.is_cuda()) {
    return RoiAlignBackwardCuda(grad_output, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels,
                                height, width, sampling_ratio, aligned);
  }
#endif
  CheckCpu("roi_align backward", grad_output);
  if (grad_output.numel() == 0) return at::zeros({batch_size, channels, height, width}, grad_output.options());
  at::Tensor grad_nhwc = at::zeros({batch_size, height, width, channels}, grad_output.options());
  const at::Tensor grad_bins = grad_output.reshape({rois.size(0), channels, -1}).transpose(1, 2).contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "roi_align_backward", [&] {
    BackwardKernel<scalar_t>(grad_bins.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), rois.size(0), spatial_scale,
                             channels, height, width, pooled_height, pooled_width, sampling_ratio, aligned,
                             grad_nhwc.data_ptr<scalar_t>());
  });
  return grad_nhwc.permute({0, 3, 1, 2}).contiguous();
}

}  // namespace spnas::ops
