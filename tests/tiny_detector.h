// The tiny torchvision detector of tests/fixtures/detector.pt (tools/golden/make_detector_fixtures.py):
// ResNet-18 layout at width 8, FPN of 32 channels, 64-wide box head, 5 classes.
#ifndef SPNAS_TESTS_TINY_DETECTOR_H_
#define SPNAS_TESTS_TINY_DETECTOR_H_

#include "spnas/models/model_options.pb.h"

namespace spnas::testing {

inline FasterRCNNOptions FixtureDetectorOptions(int num_classes = 5) {
  FasterRCNNOptions o;
  SerialBackboneOptions body;
  body.set_code("11-21-21-21");
  body.set_block(BASIC);
  body.set_stem_width(8);
  o.mutable_backbone()->set_type("SerialBackbone");
  o.mutable_backbone()->mutable_options()->PackFrom(body);
  FPNOptions fpn;
  fpn.set_out_channels(32);
  o.mutable_neck()->set_type("FPN");
  o.mutable_neck()->mutable_options()->PackFrom(fpn);
  TwoMLPHeadOptions head;
  head.set_representation_size(64);
  o.mutable_box_head()->set_type("TwoMLPHead");
  o.mutable_box_head()->mutable_options()->PackFrom(head);
  o.set_num_classes(num_classes);
  o.add_min_size(128);
  o.set_max_size(192);
  for (int s : {16, 32, 64, 128, 256}) o.add_anchor_sizes(s);
  o.set_rpn_pre_nms_top_n_train(300);
  o.set_rpn_pre_nms_top_n_test(200);
  o.set_rpn_post_nms_top_n_train(150);
  o.set_rpn_post_nms_top_n_test(100);
  o.set_box_batch_size_per_image(64);
  o.set_rpn_batch_size_per_image(64);
  return o;
}

}  // namespace spnas::testing

#endif  // SPNAS_TESTS_TINY_DETECTOR_H_
