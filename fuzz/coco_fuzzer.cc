// Fuzzes the COCO readers: annotations (the CocoDetection dataset and `evaluate`) and
// detections (`evaluate`'s results file). The input is "<annotations>\n----\n<detections>".
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/data/coco.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/metrics/coco_files.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> parts = spnas::fuzz::SplitParts(data, size, 2);
  const std::string annotations = spnas::fuzz::WriteScratchFile("annotations.json", parts[0]);
  const std::string detections = spnas::fuzz::WriteScratchFile("detections.json", parts.size() > 1 ? parts[1] : "[]");

  spnas::CocoDetectionOptions options;
  options.set_annotation_file(annotations);
  options.set_image_dir(spnas::fuzz::ScratchDir() + "/images");
  options.set_skip_bad_samples(size % 2 == 1);  // both ways of handling a broken annotation
  google::protobuf::Any any;
  any.PackFrom(options);
  auto dataset = spnas::DatasetRegistry().Create("CocoDetection", any);
  if (dataset.ok()) (void)(*dataset)->Load();

  (void)spnas::ReadCocoResults(detections);
  (void)spnas::EvaluateCocoFiles(annotations, detections);
  return 0;
}
