// What a detection dataset gives and a detector returns: plain tensors per image, shared by
// the data, metrics and models packages.
#ifndef SPNAS_CORE_DETECTION_TYPES_H_
#define SPNAS_CORE_DETECTION_TYPES_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace spnas {

// `t` on `device`; an undefined tensor stays undefined.
inline at::Tensor MoveTo(const at::Tensor& t, const c10::Device& device) { return t.defined() ? t.to(device) : t; }

// Ground truth of one image: boxes [K, 4] (x1, y1, x2, y2, pixels), labels [K] int64 (1..C-1).
struct Target {
  at::Tensor boxes;
  at::Tensor labels;
  // A CPU generator of this image's own for a detector's random draws in training (its size,
  // the anchors and proposals it samples), so that they do not depend on which other images
  // share its batch (data parallel). Undefined: torch's default generator.
  at::Generator generator;
  Target To(const c10::Device& device) const { return {MoveTo(boxes, device), MoveTo(labels, device), generator}; }
};

struct Detections {
  at::Tensor boxes;   // [D, 4] in the input image's pixels
  at::Tensor scores;  // [D]
  at::Tensor labels;  // [D] int64
  Detections To(const c10::Device& device) const {
    return {MoveTo(boxes, device), MoveTo(scores, device), MoveTo(labels, device)};
  }
};

}  // namespace spnas

#endif  // SPNAS_CORE_DETECTION_TYPES_H_
