// FashionDet, the COCO round trip (export, then read back), COCO and VOC input errors, loaders.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "spnas/data/coco.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/image_io.h"
#include "spnas/data/loader.h"

// The raw-string configs below carry the line:column positions the tests assert.
// clang-format off
namespace spnas {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

template <typename T = Dataset>
std::shared_ptr<T> Load(const std::string& type, const google::protobuf::Message& options, Status* status = nullptr) {
  google::protobuf::Any any;
  any.PackFrom(options);
  auto created = DatasetRegistry().Create(type, any);
  EXPECT_TRUE(created.ok()) << created.status();
  std::shared_ptr<Dataset> d(std::move(created).value().release());
  Status s = d->Load();
  if (status != nullptr) {
    *status = s;
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  return std::dynamic_pointer_cast<T>(d);
}

FashionDetOptions Scenes(const std::string& split, int n, uint64_t seed = 5) {
  FashionDetOptions o;
  o.set_split(split);
  o.set_num_images(n);
  o.set_canvas_size(96);
  o.set_seed(seed);
  return o;
}

TEST(FashionDetTest, ScenesAreDeterministicTightAndSplitBySource) {
  auto a = Load<DetectionDataset>("FashionDet", Scenes("train", 50));
  auto b = Load<DetectionDataset>("FashionDet", Scenes("train", 50));
  auto other_seed = Load<DetectionDataset>("FashionDet", Scenes("train", 50, 6));
  auto val = Load<DetectionDataset>("FashionDet", Scenes("val", 50));
  EXPECT_EQ(a->Size(), 50);
  EXPECT_EQ(a->ClassNames().size(), 11u);
  int64_t boxes = 0;
  for (int i = 0; i < 50; ++i) {
    const DetectionSample s = a->Get(i), t = b->Get(i);
    EXPECT_TRUE(at::equal(s.image, t.image));
    EXPECT_TRUE(at::equal(s.target.boxes, t.target.boxes));
    EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{3, 96, 96}));
    const int64_t k = s.target.boxes.size(0);
    boxes += k;
    for (int64_t j = 0; j < k; ++j) {
      const at::Tensor box = s.target.boxes[j];
      const int x1 = box[0].item<int>(), y1 = box[1].item<int>(), x2 = box[2].item<int>(), y2 = box[3].item<int>();
      EXPECT_TRUE(x1 >= 0 && y1 >= 0 && x2 <= 96 && y2 <= 96 && x2 > x1 && y2 > y1);
      const int64_t label = s.target.labels[j].item<int64_t>();
      EXPECT_TRUE(label >= 1 && label <= 10);
      // Tight: item pixels (at least 0.1 x the dimmest tint) reach every side of the box.
      const at::Tensor crop = s.image.amax(0).slice(0, y1, y2).slice(1, x1, x2);
      EXPECT_GE(crop.select(0, 0).max().item<float>(), 0.06f);
      EXPECT_GE(crop.select(0, crop.size(0) - 1).max().item<float>(), 0.06f);
      EXPECT_GE(crop.select(1, 0).max().item<float>(), 0.06f);
      EXPECT_GE(crop.select(1, crop.size(1) - 1).max().item<float>(), 0.06f);
    }
    // Items are brighter than the background.
    if (k > 0) {
      at::Tensor inside = at::zeros({96, 96}, at::kBool);
      for (int64_t j = 0; j < k; ++j) {
        const at::Tensor box = s.target.boxes[j];
        inside.slice(0, box[1].item<int>(), box[3].item<int>()).slice(1, box[0].item<int>(), box[2].item<int>()).fill_(true);
      }
      const at::Tensor gray = s.image.mean(0);
      if (inside.logical_not().any().item<bool>()) {
        EXPECT_GT(gray.masked_select(inside).mean().item<float>(), gray.masked_select(inside.logical_not()).mean().item<float>());
      }
    }
  }
  EXPECT_GE(boxes, 50 * 1);
  EXPECT_FALSE(at::equal(a->Get(0).image, other_seed->Get(0).image));
  EXPECT_FALSE(at::equal(a->Get(0).image, val->Get(0).image));
  EXPECT_THAT(a->Statistics(), HasSubstr("50 images"));
}

TEST(FashionDetTest, BadOptionsAreRejected) {
  FashionDetOptions o = Scenes("validation", 10);
  google::protobuf::Any any;
  any.PackFrom(o);
  EXPECT_THAT(DatasetRegistry().ValidateOptions("FashionDet", any).message(),
              HasSubstr("split must be \"train\", \"val\" or \"test\", got \"validation\""));
  o = Scenes("val", 10);
  o.set_max_item_size(200);
  any.PackFrom(o);
  EXPECT_THAT(DatasetRegistry().ValidateOptions("FashionDet", any).message(), HasSubstr("max_item_size <= canvas_size"));
}

TEST(CocoTest, ExportedFashionDetReadsBackAsCoco) {
  auto scenes = Load<DetectionDataset>("FashionDet", Scenes("val", 12));
  const std::string dir = TempDir("coco");
  ASSERT_TRUE(ExportCoco(*scenes, dir).ok());
  CocoDetectionOptions o;
  o.set_annotation_file(dir + "/annotations.json");
  o.set_image_dir(dir + "/images");
  auto coco = Load<DetectionDataset>("CocoDetection", o);
  ASSERT_EQ(coco->Size(), 12);
  EXPECT_EQ(coco->ClassNames(), scenes->ClassNames());
  for (int i = 0; i < 12; ++i) {
    const DetectionSample a = scenes->Get(i), b = coco->Get(i);
    EXPECT_EQ(a.image_id, b.image_id);
    EXPECT_LT((a.image - b.image).abs().max().item<float>(), 1.0f / 255 + 1e-6);  // PNG keeps 8 bits
    EXPECT_TRUE(at::allclose(a.target.boxes, b.target.boxes));
    EXPECT_TRUE(at::equal(a.target.labels, b.target.labels));
  }
  EXPECT_THAT(coco->Statistics(), HasSubstr("12 images (0 bad ones skipped)"));
}

void WriteCoco(const std::string& dir, const std::string& annotations) {
  fs::create_directories(dir + "/images");
  ASSERT_TRUE(WriteImage(dir + "/images/a.png", at::rand({3, 20, 30})).ok());
  std::ofstream(dir + "/ann.json") << R"({"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20},
    {"id": 2, "file_name": "missing.png", "width": 30, "height": 20}],
    "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}], "annotations": [)" << annotations << "]}";
}

TEST(CocoTest, BadAnnotationsNameTheFileAndAnnotation) {
  const std::string dir = TempDir("bad_coco");
  WriteCoco(dir, R"({"id": 10, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, -2]},
                    {"id": 11, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]},
                    {"id": 12, "image_id": 1, "category_id": 3, "bbox": [20, 10, 50, 5]})");
  CocoDetectionOptions o;
  o.set_annotation_file(dir + "/ann.json");
  o.set_image_dir(dir + "/images");
  Status status;
  Load("CocoDetection", o, &status);
  EXPECT_THAT(status.message(), HasSubstr("2 images have bad annotations or files"));
  EXPECT_THAT(status.message(), HasSubstr("annotation 10 of image 'a.png': box [1, 1, 5, -2] has a negative width or height"));
  EXPECT_THAT(status.message(), HasSubstr("missing.png' does not exist"));
  // Skipping bad samples keeps the rest and counts what it skipped.
  o.set_skip_bad_samples(true);
  auto d = Load<DetectionDataset>("CocoDetection", o, &status);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(d->Size(), 0);
  EXPECT_THAT(d->Statistics(), HasSubstr("2 bad ones skipped"));
}

TEST(CocoTest, CategoriesMapToContiguousLabelsAndCrowdIsKeptApart) {
  const std::string dir = TempDir("good_coco");
  WriteCoco(dir, R"({"id": 10, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 4], "area": 12.5},
                    {"id": 11, "image_id": 1, "category_id": 3, "bbox": [2, 2, 10, 10], "iscrowd": 1})");
  CocoDetectionOptions o;
  o.set_annotation_file(dir + "/ann.json");
  o.set_image_dir(dir + "/images");
  o.set_skip_bad_samples(true);  // image 2's file is missing
  auto d = Load<DetectionDataset>("CocoDetection", o);
  ASSERT_EQ(d->Size(), 1);
  EXPECT_EQ(d->ClassNames(), (std::vector<std::string>{"__background__", "dog", "cat"}));
  EXPECT_EQ(d->CategoryId(2), 7);
  const DetectionSample s = d->Get(0);
  EXPECT_TRUE(at::equal(s.target.labels, at::tensor({2}, at::kLong)));
  EXPECT_TRUE(at::allclose(s.target.boxes, at::tensor({1.f, 1.f, 6.f, 5.f}).view({1, 4})));
  EXPECT_FLOAT_EQ(s.areas[0].item<float>(), 12.5f);
  EXPECT_EQ(s.crowd_boxes.size(0), 1);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{3, 20, 30}));
}

TEST(CocoTest, ResultsJsonRoundTrips) {
  const std::string path = TempDir("results") + "/r.json";
  std::ofstream(path) << CocoResultsJson({{4, 7, {1, 2, 3, 4}, 0.5}, {5, 3, {0, 0, 1, 1}, 0.25}});
  auto results = ReadCocoResults(path);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].category_id, 7);
  EXPECT_DOUBLE_EQ((*results)[1].bbox[3], 1.0);
}

TEST(VocTest, ReadsXmlAnnotationsAndKeepsDifficultApart) {
  const std::string root = TempDir("voc");
  for (const char* d : {"Annotations", "JPEGImages", "ImageSets/Main"}) fs::create_directories(root + "/" + d);
  ASSERT_TRUE(WriteImage(root + "/JPEGImages/000001.jpg", at::rand({3, 40, 50})).ok());
  std::ofstream(root + "/ImageSets/Main/test.txt") << "000001\n";
  std::ofstream(root + "/Annotations/000001.xml")
      << "<annotation><size><width>50</width><height>40</height></size>"
         "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax>"
         "<ymax>30</ymax></bndbox></object>"
         "<object><name>cat</name><difficult>1</difficult><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>40</xmax>"
         "<ymax>35</ymax></bndbox></object></annotation>";
  VocDetectionOptions o;
  o.set_root(root);
  o.set_image_set("test");
  auto d = Load<DetectionDataset>("VocDetection", o);
  ASSERT_EQ(d->Size(), 1);
  const DetectionSample s = d->Get(0);
  EXPECT_TRUE(at::allclose(s.target.boxes, at::tensor({2.f, 3.f, 20.f, 30.f}).view({1, 4})));
  EXPECT_EQ(s.target.labels[0].item<int64_t>(), 12);  // dog
  EXPECT_EQ(s.crowd_boxes.size(0), 1);

  std::ofstream(root + "/Annotations/000001.xml") << "<annotation><object><name>unicorn</name></object></annotation>";
  Status status;
  Load("VocDetection", o, &status);
  EXPECT_THAT(status.message(), HasSubstr("000001.xml' object 0 lacks <name> or <bndbox>"));
}

TEST(LoaderTest, OrderIsAFunctionOfSeedAndEpoch) {
  LoaderOptions o;
  o.shuffle = true;
  o.seed = 3;
  EXPECT_EQ(EpochOrder(20, o, 0), EpochOrder(20, o, 0));
  EXPECT_NE(EpochOrder(20, o, 0), EpochOrder(20, o, 1));
  o.shuffle = false;
  EXPECT_EQ(EpochOrder(3, o, 5), (std::vector<int64_t>{0, 1, 2}));
}

TEST(LoaderTest, BatchesComeInOrderFromWorkerThreads) {
  auto scenes = Load<DetectionDataset>("FashionDet", Scenes("val", 10));
  LoaderOptions o;
  o.batch_size = 3;
  o.workers = 3;
  DetectionLoader loader(*scenes, o);
  EXPECT_EQ(loader.NumBatches(), 4);
  auto epoch = loader.Epoch(0);
  DetectionBatch batch;
  int64_t next = 0;
  while (epoch->Next(&batch)) {
    for (const auto& s : batch.samples) EXPECT_EQ(s.image_id, next++);
  }
  EXPECT_EQ(next, 10);
}

TEST(LoaderTest, HorizontalFlipMovesBoxesWithTheImage) {
  DetectionSample s;
  s.image = at::zeros({3, 10, 20});
  s.image.slice(2, 2, 5).fill_(1);
  s.target.boxes = at::tensor({2.f, 0.f, 5.f, 10.f}).view({1, 4});
  FlipHorizontal(&s);
  EXPECT_TRUE(at::allclose(s.target.boxes, at::tensor({15.f, 0.f, 18.f, 10.f}).view({1, 4})));
  EXPECT_EQ(s.image.slice(2, 15, 18).min().item<float>(), 1.f);
}

}  // namespace
}  // namespace spnas
