#include "spnas/metrics/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "spnas/core/parallel.h"

namespace spnas {
namespace {

constexpr int kT = 10;   // IoU thresholds
constexpr int kR = 101;  // recall thresholds
constexpr int kA = 4;    // area ranges
constexpr int kM = 3;    // maxDets
constexpr int kMaxDets[kM] = {1, 10, 100};
constexpr double kAreaRanges[kA][2] = {{0, 1e10}, {0, 1024}, {1024, 9216}, {9216, 1e10}};

// numpy.linspace(start, stop, num)
std::vector<double> Linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) y[i] = i * step + start;
  y[num - 1] = stop;
  return y;
}

const std::vector<double>& IouThresholds() {
  static const auto* t = new std::vector<double>(Linspace(0.5, 0.95, kT));
  return *t;
}

const std::vector<double>& RecallThresholds() {
  static const auto* r = new std::vector<double>(Linspace(0.0, 1.0, kR));
  return *r;
}

// maskUtils.iou for boxes: intersection over union, or over the detection's area for crowd.
double BoxIou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
  const double w = std::min(d[0] + d[2], g[0] + g[2]) - std::max(d[0], g[0]);
  if (w <= 0) return 0;
  const double h = std::min(d[1] + d[3], g[1] + g[3]) - std::max(d[1], g[1]);
  if (h <= 0) return 0;
  const double inter = w * h;
  const double da = d[2] * d[3];
  const double u = crowd ? da : da + g[2] * g[3] - inter;
  return inter / u;
}

// evaluateImg's result for one (image, category, area range) at maxDet 100.
struct ImageEval {
  std::vector<double> scores;    // detections by decreasing score
  std::vector<uint8_t> matched;  // [T * D]: matched a ground truth
  std::vector<uint8_t> ignored;  // [T * D]: detection ignored
  int num_gt_not_ignored = 0;
  int num_dets = 0;
};

// Argsort like numpy's mergesort (stable).
template <typename Key>
std::vector<int> StableArgsort(int n, Key key) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  return order;
}

// One (image, category): detections by decreasing score (at most 100) and their IoUs with the
// ground truth, computed once for all area ranges.
struct Prepared {
  std::vector<const CocoGt*> gt;
  std::vector<const CocoDet*> dt;
  std::vector<double> ious;  // [D * G]
};

Prepared Prepare(const std::vector<const CocoGt*>& gt, const std::vector<const CocoDet*>& dt_in) {
  Prepared p;
  p.gt = gt;
  const std::vector<int> order = StableArgsort(static_cast<int>(dt_in.size()), [&](int i) { return -dt_in[i]->score; });
  for (size_t i = 0; i < order.size() && i < 100; ++i) p.dt.push_back(dt_in[order[i]]);
  const size_t G = gt.size(), D = p.dt.size();
  p.ious.resize(D * G);
  for (size_t d = 0; d < D; ++d) {
    for (size_t g = 0; g < G; ++g) p.ious[d * G + g] = BoxIou(p.dt[d]->bbox, gt[g]->bbox, gt[g]->iscrowd);
  }
  return p;
}

// evaluateImg for one area range.
bool EvaluateImage(const Prepared& p, int area, ImageEval* out) {
  if (p.gt.empty() && p.dt.empty()) return false;
  const double lo = kAreaRanges[area][0], hi = kAreaRanges[area][1];
  // Ground truth: not ignored first.
  const int G = static_cast<int>(p.gt.size()), D = static_cast<int>(p.dt.size());
  std::vector<uint8_t> ignore_in(G);
  for (int g = 0; g < G; ++g) ignore_in[g] = p.gt[g]->iscrowd || p.gt[g]->area < lo || p.gt[g]->area > hi;
  const std::vector<int> gt_order = StableArgsort(G, [&](int i) { return ignore_in[i]; });
  std::vector<uint8_t> gt_ignore(G), crowd(G);
  for (int g = 0; g < G; ++g) {
    gt_ignore[g] = ignore_in[gt_order[g]];
    crowd[g] = p.gt[gt_order[g]]->iscrowd;
  }
  out->num_dets = D;
  out->scores.resize(D);
  for (int d = 0; d < D; ++d) out->scores[d] = p.dt[d]->score;
  out->matched.assign(static_cast<size_t>(kT) * D, 0);
  out->ignored.assign(static_cast<size_t>(kT) * D, 0);
  out->num_gt_not_ignored = static_cast<int>(std::count(gt_ignore.begin(), gt_ignore.end(), 0));
  std::vector<uint8_t> gt_matched(static_cast<size_t>(kT) * G, 0);
  const std::vector<double>& thresholds = IouThresholds();
  for (int t = 0; t < kT && G > 0; ++t) {
    for (int d = 0; d < D; ++d) {
      const double* row = p.ious.data() + static_cast<size_t>(d) * G;
      double iou = std::min(thresholds[t], 1 - 1e-10);
      int m = -1;
      for (int g = 0; g < G; ++g) {
        if (gt_matched[t * G + g] && !crowd[g]) continue;             // taken
        if (m > -1 && gt_ignore[m] == 0 && gt_ignore[g] == 1) break;  // only ignored ones left
        const double v = row[gt_order[g]];
        if (v < iou) continue;
        iou = v;
        m = g;
      }
      if (m == -1) continue;
      out->ignored[t * D + d] = gt_ignore[m];
      out->matched[t * D + d] = 1;
      gt_matched[t * G + m] = 1;
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (int d = 0; d < D; ++d) {
    const double a = p.dt[d]->bbox[2] * p.dt[d]->bbox[3];
    if (a < lo || a > hi) {
      for (int t = 0; t < kT; ++t) out->ignored[t * D + d] |= !out->matched[t * D + d];
    }
  }
  return true;
}

}  // namespace

const char* const CocoStats::kNames[12] = {
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
};

std::map<std::string, double> CocoStats::Metrics() const {
  // -1 (no ground truth in a range) stays -1.
  auto pct = [](double v) { return v < 0 ? -1.0 : v * 100; };
  return {{"mAP", pct(stats[0])}, {"AP50", pct(stats[1])}, {"AP75", pct(stats[2])},
          {"APs", pct(stats[3])}, {"APm", pct(stats[4])},  {"APl", pct(stats[5])}};
}

std::string CocoStats::Summary() const {
  std::string out;
  char line[128];
  for (int i = 0; i < 12; ++i) {
    std::snprintf(line, sizeof(line), " %s = %0.3f\n", kNames[i], stats[i]);
    out += line;
  }
  return out;
}

void CocoEvaluator::AddImage(int64_t image_id, std::vector<CocoGt> gts, std::vector<CocoDet> dets) {
  images_.push_back({image_id, std::move(gts), std::move(dets)});
}

CocoStats CocoEvaluator::Evaluate() const {
  // Categories: those of the ground truth (pycocotools evaluates all categories of the
  // annotation file; a category with no ground truth stays -1 and is left out of the mean).
  std::set<int64_t> category_set;
  for (const Image& im : images_) {
    for (const CocoGt& g : im.gts) category_set.insert(g.category);
    for (const CocoDet& d : im.dets) category_set.insert(d.category);
  }
  const std::vector<int64_t> categories(category_set.begin(), category_set.end());
  const int K = static_cast<int>(categories.size());
  // precision[t][r][k][a][m], recall[t][k][a][m], -1 where undefined.
  std::vector<double> precision(static_cast<size_t>(kT) * kR * K * kA * kM, -1.0);
  std::vector<double> recall(static_cast<size_t>(kT) * K * kA * kM, -1.0);
  auto P = [&](int t, int r, int k, int a, int m) -> double& {
    return precision[(((static_cast<size_t>(t) * kR + r) * K + k) * kA + a) * kM + m];
  };
  auto Rc = [&](int t, int k, int a, int m) -> double& {
    return recall[((static_cast<size_t>(t) * K + k) * kA + a) * kM + m];
  };

  ParallelFor(0, K, 1, [&](int64_t k_begin, int64_t k_end) {
    for (int64_t k = k_begin; k < k_end; ++k) {
      const int64_t cat = categories[k];
      // Per image, the ground truth and detections of this category.
      std::vector<std::vector<const CocoGt*>> gts(images_.size());
      std::vector<std::vector<const CocoDet*>> dts(images_.size());
      for (size_t i = 0; i < images_.size(); ++i) {
        for (const CocoGt& g : images_[i].gts) {
          if (g.category == cat) gts[i].push_back(&g);
        }
        for (const CocoDet& d : images_[i].dets) {
          if (d.category == cat) dts[i].push_back(&d);
        }
      }
      std::vector<Prepared> prepared;
      for (size_t i = 0; i < images_.size(); ++i) {
        if (!gts[i].empty() || !dts[i].empty()) prepared.push_back(Prepare(gts[i], dts[i]));
      }
      for (int a = 0; a < kA; ++a) {
        std::vector<ImageEval> evals;
        for (const Prepared& p : prepared) {
          ImageEval e;
          if (EvaluateImage(p, a, &e)) evals.push_back(std::move(e));
        }
        int npig = 0;
        for (const ImageEval& e : evals) npig += e.num_gt_not_ignored;
        if (npig == 0) continue;
        for (int m = 0; m < kM; ++m) {
          const int max_det = kMaxDets[m];
          // All images' first max_det detections, by decreasing score (stable).
          std::vector<std::pair<int, int>> refs;  // (eval index, detection index)
          std::vector<double> scores;
          for (size_t e = 0; e < evals.size(); ++e) {
            for (int d = 0; d < std::min(max_det, evals[e].num_dets); ++d) {
              refs.emplace_back(static_cast<int>(e), d);
              scores.push_back(evals[e].scores[d]);
            }
          }
          const std::vector<int> order =
              StableArgsort(static_cast<int>(scores.size()), [&](int i) { return -scores[i]; });
          const int nd = static_cast<int>(order.size());
          for (int t = 0; t < kT; ++t) {
            std::vector<double> rc(nd), pr(nd);
            double tp = 0, fp = 0;
            for (int i = 0; i < nd; ++i) {
              const auto [e, d] = refs[order[i]];
              const ImageEval& ev = evals[e];
              const bool matched = ev.matched[t * ev.num_dets + d];
              const bool ignored = ev.ignored[t * ev.num_dets + d];
              tp += matched && !ignored;
              fp += !matched && !ignored;
              rc[i] = tp / npig;
              pr[i] = tp / (fp + tp + 2.220446049250313e-16);  // np.spacing(1)
            }
            Rc(t, k, a, m) = nd ? rc[nd - 1] : 0;
            for (int i = nd - 1; i > 0; --i) pr[i - 1] = std::max(pr[i - 1], pr[i]);
            const std::vector<double>& rec_thr = RecallThresholds();
            for (int r = 0; r < kR; ++r) {
              const int pi = static_cast<int>(std::lower_bound(rc.begin(), rc.end(), rec_thr[r]) - rc.begin());
              P(t, r, k, a, m) = pi < nd ? pr[pi] : 0;
            }
          }
        }
      }
    }
  });

  // summarize()
  auto mean_of = [](const std::vector<double>& values) {
    double sum = 0;
    int n = 0;
    for (double v : values) {
      if (v > -1) sum += v, ++n;
    }
    return n == 0 ? -1.0 : sum / n;
  };
  auto ap = [&](int t_only, int a, int m) {
    std::vector<double> v;
    for (int t = 0; t < kT; ++t) {
      if (t_only >= 0 && t != t_only) continue;
      for (int r = 0; r < kR; ++r) {
        for (int k = 0; k < K; ++k) v.push_back(P(t, r, k, a, m));
      }
    }
    return mean_of(v);
  };
  auto ar = [&](int a, int m) {
    std::vector<double> v;
    for (int t = 0; t < kT; ++t) {
      for (int k = 0; k < K; ++k) v.push_back(Rc(t, k, a, m));
    }
    return mean_of(v);
  };
  CocoStats s;
  s.stats = {ap(-1, 0, 2), ap(0, 0, 2), ap(5, 0, 2), ap(-1, 1, 2), ap(-1, 2, 2), ap(-1, 3, 2),
             ar(0, 0),     ar(0, 1),    ar(0, 2),    ar(1, 2),     ar(2, 2),     ar(3, 2)};
  return s;
}

}  // namespace spnas
