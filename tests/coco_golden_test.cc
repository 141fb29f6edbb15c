// The COCO evaluator against pycocotools (tests/fixtures/coco, made by
// tools/golden/make_coco_fixtures.py): the 12 numbers of COCOeval(..., 'bbox').stats on a
// synthetic set with crowd regions, empty images, a category without ground truth, all three
// area ranges and more than 100 detections on some images.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "spnas/metrics/coco_eval.h"
#include "spnas/metrics/coco_files.h"

namespace spnas {
namespace {

const char kDir[] = "tests/fixtures/coco/";

TEST(CocoGoldenTest, MatchesPycocotools) {
  std::ifstream in(std::string(kDir) + "stats.txt");
  ASSERT_TRUE(in) << "cannot read " << kDir << "stats.txt";
  std::vector<double> expected;
  for (double v; in >> v;) expected.push_back(v);
  ASSERT_TRUE(in.eof()) << "stats.txt holds something other than numbers";
  ASSERT_EQ(expected.size(), 12u);

  const StatusOr<CocoStats> stats =
      EvaluateCocoFiles(std::string(kDir) + "annotations.json", std::string(kDir) + "detections.json");
  ASSERT_TRUE(stats.ok()) << stats.status();
  for (int i = 0; i < 12; ++i) {
    EXPECT_NEAR(stats->stats[i], expected[i], 1e-6) << "stats[" << i << "]: " << CocoStats::kNames[i];
  }
  // The set is made so that no number is trivially -1 (a range without ground truth) or 0.
  for (double v : expected) EXPECT_GT(v, 0.0);
}

}  // namespace
}  // namespace spnas
