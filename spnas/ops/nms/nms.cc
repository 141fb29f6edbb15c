#include "spnas/ops/nms/nms.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>

#include <vector>

#ifdef SPNAS_WITH_CUDA
#include "spnas/ops/nms/nms_cuda.h"
#endif

namespace spnas::ops {
namespace {

void CheckInputs(const at::Tensor& boxes, const at::Tensor& scores) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes should be a [N, 4] tensor, got ", boxes.sizes());
  TORCH_CHECK(scores.dim() == 1, "nms: scores should be a [N] tensor, got ", scores.sizes());
  TORCH_CHECK(boxes.size(0) == scores.size(0),
              "nms: boxes and scores should have the same number of "
              "elements, got ",
              boxes.size(0), " and ", scores.size(0));
  TORCH_CHECK(boxes.scalar_type() == scores.scalar_type(),
              "nms: boxes and scores should have the same "
              "dtype, got ",
              boxes.scalar_type(), " and ", scores.scalar_type());
  TORCH_CHECK(boxes.device() == scores.device(), "nms: boxes and scores should be on the same device, got ",
              boxes.device(), " and ", scores.device());
  TORCH_CHECK(at::isFloatingType(boxes.scalar_type()), "nms: boxes should be floating point, got ",
              boxes.scalar_type());
}

template <typename T>
at::Tensor NmsKernel(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  const int64_t n = boxes.size(0);
  // Stable sort: equal scores keep their input order.
  const at::Tensor order_t = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const int64_t* order = order_t.data_ptr<int64_t>();
  // Boxes in score order, one contiguous row each, so the inner loop reads memory in order.
  const at::Tensor sorted_t = boxes.index_select(0, order_t).contiguous();
  const T* b = sorted_t.data_ptr<T>();
  std::vector<T> areas(n);
  for (int64_t i = 0; i < n; ++i) areas[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
  std::vector<uint8_t> suppressed(n, 0);
  at::Tensor keep_t = at::empty({n}, boxes.options().dtype(at::kLong));
  int64_t* keep = keep_t.data_ptr<int64_t>();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    keep[kept++] = order[i];
    const T ix1 = b[4 * i], iy1 = b[4 * i + 1], ix2 = b[4 * i + 2], iy2 = b[4 * i + 3];
    const T iarea = areas[i];
    for (int64_t j = i + 1; j < n; ++j) {
      if (suppressed[j]) continue;
      const T w = std::max(static_cast<T>(0), std::min(ix2, b[4 * j + 2]) - std::max(ix1, b[4 * j]));
      const T h = std::max(static_cast<T>(0), std::min(iy2, b[4 * j + 3]) - std::max(iy1, b[4 * j + 1]));
      const T inter = w * h;
      const T iou = inter / (iarea + areas[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep_t.narrow(0, 0, kept);
}

// Under autocast, NMS runs in float32, as torchvision's Autocast kernel does: the detector's
// scores come out of the network in half precision while its decoded boxes are float32.
bool AutocastToFloat(const at::Tensor& boxes, const at::Tensor& scores) {
  return at::autocast::is_autocast_enabled(boxes.device().type()) &&
         (boxes.scalar_type() != at::kFloat || scores.scalar_type() != at::kFloat);
}

// Above this many box coordinates, BatchedNms runs one NMS per category rather than one over
// offset boxes; torchvision's own limits, so that the kept indices match it on both devices.
int64_t PerCategoryAbove(const at::Device& device) { return device.is_cpu() ? 4000 : 100000; }

}  // namespace

at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  if (AutocastToFloat(boxes, scores)) return Nms(boxes.to(at::kFloat), scores.to(at::kFloat), iou_threshold);
  CheckInputs(boxes, scores);
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
#ifdef SPNAS_WITH_CUDA
  if (boxes.is_cuda()) return NmsCuda(boxes, scores, iou_threshold);
#endif
  // Boxes of a device without a kernel here are suppressed on the CPU: NMS is cheap next to
  // the model that produced them.
  TORCH_CHECK(boxes.scalar_type() == at::kFloat || boxes.scalar_type() == at::kDouble,
              "nms: the CPU kernel takes float and double boxes, got ", boxes.scalar_type(), " on ", boxes.device(),
              " (convert them to float)");
  const at::Tensor cpu_boxes = boxes.cpu().contiguous();
  const at::Tensor cpu_scores = scores.cpu().contiguous();
  at::Tensor keep;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms",
                             [&] { keep = NmsKernel<scalar_t>(cpu_boxes, cpu_scores, iou_threshold); });
  return keep.to(boxes.device());
}

at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs, double iou_threshold) {
  if (AutocastToFloat(boxes, scores)) {
    return BatchedNms(boxes.to(at::kFloat), scores.to(at::kFloat), idxs, iou_threshold);
  }
  CheckInputs(boxes, scores);
  TORCH_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes.size(0),
              "batched_nms: idxs should be a [N] tensor "
              "with N = ",
              boxes.size(0), ", got ", idxs.sizes());
  TORCH_CHECK(idxs.device() == boxes.device(), "batched_nms: idxs should be on the boxes' device, got ", idxs.device(),
              " and ", boxes.device());
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  if (boxes.numel() > PerCategoryAbove(boxes.device())) {
    // One NMS per category, then all kept boxes by decreasing score. It syncs with the host
    // once per category, as torchvision's loop does; below the limit nothing here syncs.
    at::Tensor keep_mask = at::zeros_like(scores, scores.options().dtype(at::kBool));
    const at::Tensor classes = std::get<0>(at::_unique(idxs));
    for (int64_t c = 0; c < classes.size(0); ++c) {
      const at::Tensor members = at::where(idxs == classes[c])[0];
      const at::Tensor kept = Nms(boxes.index_select(0, members), scores.index_select(0, members), iou_threshold);
      keep_mask.index_fill_(0, members.index_select(0, kept), true);
    }
    const at::Tensor keep = at::where(keep_mask)[0];
    return keep.index_select(0, std::get<1>(scores.index_select(0, keep).sort(/*dim=*/0, /*descending=*/true)));
  }
  // Shift each category by an offset larger than any coordinate, so categories never overlap.
  const at::Tensor max_coordinate = boxes.max();
  const at::Tensor offsets = idxs.to(boxes.scalar_type()) * (max_coordinate + 1);
  return Nms(boxes + offsets.unsqueeze(1), scores, iou_threshold);
}

}  // namespace spnas::ops
