// Fuzzes the Pascal VOC reader on one annotation file (Annotations/<id>.xml).
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  spnas::fuzz::WriteScratchFile("voc/ImageSets/Main/fuzz.txt", "a\n");
  spnas::fuzz::WriteScratchFile("voc/JPEGImages/a.jpg", "");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spnas::fuzz::WriteScratchFile("voc/Annotations/a.xml", std::string_view(reinterpret_cast<const char*>(data), size));
  spnas::VocDetectionOptions options;
  options.set_root(spnas::fuzz::ScratchDir() + "/voc");
  options.set_image_set("fuzz");
  options.set_use_difficult(size % 2 == 1);
  google::protobuf::Any any;
  any.PackFrom(options);
  auto dataset = spnas::DatasetRegistry().Create("VocDetection", any);
  if (dataset.ok()) (void)(*dataset)->Load();
  return 0;
}
