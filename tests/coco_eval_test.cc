// COCO evaluation on cases computed by hand with pycocotools' rules, and its speed contract
// (5,000 images x 100 detections well under a second) is measured by the benchmark, not here.
#include "spnas/metrics/coco_eval.h"

#include <gtest/gtest.h>

#include "spnas/metrics/voc_ap.h"

namespace spnas {
namespace {

CocoGt Gt(int64_t cat, double x, double y, double w, double h, bool crowd = false) {
  return CocoGt{cat, {x, y, w, h}, w * h, crowd};
}
CocoDet Det(int64_t cat, double x, double y, double w, double h, double score) {
  return CocoDet{cat, {x, y, w, h}, score};
}

// A large box (area 200x200 = 40000 > 96^2) matched perfectly.
TEST(CocoEvalTest, PerfectDetectionIsOne) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 10, 10, 200, 200)}, {Det(1, 10, 10, 200, 200, 0.9)});
  const CocoStats s = e.Evaluate();
  EXPECT_DOUBLE_EQ(s.stats[0], 1.0);
  EXPECT_DOUBLE_EQ(s.stats[1], 1.0);
  EXPECT_DOUBLE_EQ(s.stats[5], 1.0);   // large
  EXPECT_DOUBLE_EQ(s.stats[3], -1.0);  // no small ground truth
  EXPECT_DOUBLE_EQ(s.stats[4], -1.0);
  EXPECT_DOUBLE_EQ(s.stats[8], 1.0);
}

TEST(CocoEvalTest, NoDetectionsIsZero) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 10, 10, 50, 50)}, {});
  const CocoStats s = e.Evaluate();
  EXPECT_DOUBLE_EQ(s.stats[0], 0.0);
  EXPECT_DOUBLE_EQ(s.stats[8], 0.0);
}

// IoU of [0,0,10,10] with [0,0,10,6] is 0.6: a hit at thresholds .50 .55 .60 (3 of 10).
TEST(CocoEvalTest, PartialOverlapCountsPerThreshold) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 0, 0, 10, 10)}, {Det(1, 0, 0, 10, 6, 0.8)});
  const CocoStats s = e.Evaluate();
  EXPECT_NEAR(s.stats[0], 0.3, 1e-12);
  EXPECT_DOUBLE_EQ(s.stats[1], 1.0);
  EXPECT_DOUBLE_EQ(s.stats[2], 0.0);
  EXPECT_NEAR(s.stats[3], 0.3, 1e-12);  // area 100 is small
}

// A category without ground truth is left out of the mean (its precision stays -1), even
// with detections (false positives of that category do not count).
TEST(CocoEvalTest, CategoryWithoutGroundTruthIsNotAveraged) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 10, 10, 50, 50)}, {Det(1, 10, 10, 50, 50, 0.9), Det(2, 0, 0, 30, 30, 0.99)});
  EXPECT_DOUBLE_EQ(e.Evaluate().stats[0], 1.0);
}

// A duplicate of a matched detection is a false positive ranked after the hit: the precision
// envelope at every recall point up to 1 is 1, so AP stays 1; if the duplicate scores higher,
// the first-ranked detection takes the match and the other is the false positive: still 1.
// With two ground truths and the duplicate between the hits, precision at recall 1 is 2/3.
TEST(CocoEvalTest, DuplicatesAreFalsePositives) {
  CocoEvaluator a;
  a.AddImage(1, {Gt(1, 0, 0, 50, 50)}, {Det(1, 0, 0, 50, 50, 0.9), Det(1, 0, 0, 50, 50, 0.8)});
  EXPECT_DOUBLE_EQ(a.Evaluate().stats[1], 1.0);

  CocoEvaluator b;
  b.AddImage(1, {Gt(1, 0, 0, 50, 50), Gt(1, 100, 100, 50, 50)},
             {Det(1, 0, 0, 50, 50, 0.9), Det(1, 0, 0, 50, 50, 0.8), Det(1, 100, 100, 50, 50, 0.7)});
  // Recall 0..0.5 at precision 1 (51 points), recall 0.51..1 at precision 2/3 (50 points).
  EXPECT_NEAR(b.Evaluate().stats[1], (51 * 1.0 + 50 * (2.0 / 3.0)) / 101, 1e-12);
}

// A detection on a crowd region is ignored (neither true nor false positive); the crowd IoU is
// intersection over the detection's area, so a small box inside a big crowd matches it.
TEST(CocoEvalTest, CrowdRegionsAreIgnored) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 0, 0, 50, 50), Gt(1, 200, 200, 300, 300, /*crowd=*/true)},
             {Det(1, 250, 250, 20, 20, 0.95), Det(1, 0, 0, 50, 50, 0.9)});
  const CocoStats s = e.Evaluate();
  EXPECT_DOUBLE_EQ(s.stats[1], 1.0);  // the crowd detection did not become a false positive
  EXPECT_DOUBLE_EQ(s.stats[0], 1.0);
}

// Equal scores keep the input order (a stable sort, as pycocotools' mergesort): the first-listed
// detection takes the ground truth.
TEST(CocoEvalTest, TiesInScoreKeepInputOrder) {
  CocoEvaluator first_wrong;
  first_wrong.AddImage(1, {Gt(1, 0, 0, 50, 50)}, {Det(1, 300, 300, 50, 50, 0.5), Det(1, 0, 0, 50, 50, 0.5)});
  // Ranked: FP then TP -> precision at recall 1 is 1/2.
  EXPECT_DOUBLE_EQ(first_wrong.Evaluate().stats[1], 0.5);
  CocoEvaluator first_right;
  first_right.AddImage(1, {Gt(1, 0, 0, 50, 50)}, {Det(1, 0, 0, 50, 50, 0.5), Det(1, 300, 300, 50, 50, 0.5)});
  EXPECT_DOUBLE_EQ(first_right.Evaluate().stats[1], 1.0);
}

// maxDets: with 1 detection allowed, only the top-scored one per image counts.
TEST(CocoEvalTest, MaxDetsCutOff) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 0, 0, 50, 50), Gt(1, 100, 100, 50, 50)},
             {Det(1, 0, 0, 50, 50, 0.9), Det(1, 100, 100, 50, 50, 0.8)});
  const CocoStats s = e.Evaluate();
  EXPECT_DOUBLE_EQ(s.stats[6], 0.5);  // AR@1: one of two found
  EXPECT_DOUBLE_EQ(s.stats[7], 1.0);  // AR@10
  EXPECT_DOUBLE_EQ(s.stats[0], 1.0);
}

// Ground truth outside an area range is ignored there, and so is an unmatched detection of that
// area: a small and a large object, each found.
TEST(CocoEvalTest, AreaRanges) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 0, 0, 10, 10), Gt(1, 100, 100, 150, 150)},
             {Det(1, 0, 0, 10, 10, 0.6), Det(1, 100, 100, 150, 150, 0.9)});
  const CocoStats s = e.Evaluate();
  EXPECT_DOUBLE_EQ(s.stats[3], 1.0);
  EXPECT_DOUBLE_EQ(s.stats[4], -1.0);
  EXPECT_DOUBLE_EQ(s.stats[5], 1.0);
}

TEST(CocoEvalTest, MetricsArePercentages) {
  CocoEvaluator e;
  e.AddImage(1, {Gt(1, 0, 0, 10, 10)}, {Det(1, 0, 0, 10, 6, 0.8)});
  const auto m = e.Evaluate().Metrics();
  EXPECT_NEAR(m.at("mAP"), 30.0, 1e-9);
  EXPECT_NEAR(m.at("AP50"), 100.0, 1e-9);
  EXPECT_DOUBLE_EQ(m.at("APm"), -1.0);
}

TEST(VocApTest, AreaUnderEnvelopeAndElevenPoint) {
  // Two ground truths; ranked hits: TP, FP, TP -> recall .5 at p 1, recall 1 at p 2/3.
  for (bool eleven : {false, true}) {
    VocEvaluator v(0.5, eleven);
    v.AddImage({{1, {0, 0, 50, 50}, false}, {1, {100, 100, 150, 150}, false}},
               {{1, {0, 0, 50, 50}, 0.9}, {1, {300, 300, 350, 350}, 0.8}, {1, {100, 100, 150, 150}, 0.7}});
    const double expected = eleven ? (6 * 1.0 + 5 * (2.0 / 3.0)) / 11 : 0.5 * 1.0 + 0.5 * (2.0 / 3.0);
    EXPECT_NEAR(v.MeanAp(), expected, 1e-12) << "eleven_point " << eleven;
  }
}

TEST(VocApTest, DifficultObjectsAreNeitherHitNorMiss) {
  VocEvaluator v;
  v.AddImage({{1, {0, 0, 50, 50}, false}, {1, {100, 100, 150, 150}, true}},
             {{1, {100, 100, 150, 150}, 0.95}, {1, {0, 0, 50, 50}, 0.9}});
  EXPECT_DOUBLE_EQ(v.MeanAp(), 1.0);
}

}  // namespace
}  // namespace spnas
