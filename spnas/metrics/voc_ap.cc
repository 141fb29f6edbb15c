#include "spnas/metrics/voc_ap.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace spnas {
namespace {

double Iou(const std::array<double, 4>& a, const std::array<double, 4>& b) {
  const double w = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double h = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = w * h;
  const double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return u > 0 ? inter / u : 0;
}

}  // namespace

void VocEvaluator::AddImage(std::vector<VocGt> gts, std::vector<VocDet> dets) {
  images_.push_back({std::move(gts), std::move(dets)});
}

std::map<int64_t, double> VocEvaluator::PerClassAp() const {
  std::set<int64_t> labels;
  for (const Image& im : images_) {
    for (const VocGt& g : im.gts) {
      if (!g.difficult) labels.insert(g.label);
    }
  }
  std::map<int64_t, double> result;
  for (int64_t label : labels) {
    int npos = 0;
    struct Ref {
      size_t image;
      const VocDet* det;
    };
    std::vector<Ref> dets;
    for (size_t i = 0; i < images_.size(); ++i) {
      for (const VocGt& g : images_[i].gts) npos += g.label == label && !g.difficult;
      for (const VocDet& d : images_[i].dets) {
        if (d.label == label) dets.push_back({i, &d});
      }
    }
    std::stable_sort(dets.begin(), dets.end(), [](const Ref& a, const Ref& b) { return a.det->score > b.det->score; });
    std::vector<std::vector<bool>> taken(images_.size());
    for (size_t i = 0; i < images_.size(); ++i) taken[i].assign(images_[i].gts.size(), false);
    std::vector<double> tp(dets.size(), 0), fp(dets.size(), 0);
    for (size_t k = 0; k < dets.size(); ++k) {
      const auto& gts = images_[dets[k].image].gts;
      double best = -1;
      int best_g = -1;
      for (size_t g = 0; g < gts.size(); ++g) {
        if (gts[g].label != label) continue;
        const double iou = Iou(dets[k].det->box, gts[g].box);
        if (iou > best) best = iou, best_g = static_cast<int>(g);
      }
      if (best > iou_threshold_) {
        if (gts[best_g].difficult) continue;  // neither
        if (!taken[dets[k].image][best_g]) {
          tp[k] = 1;
          taken[dets[k].image][best_g] = true;
        } else {
          fp[k] = 1;  // a duplicate
        }
      } else {
        fp[k] = 1;
      }
    }
    std::partial_sum(tp.begin(), tp.end(), tp.begin());
    std::partial_sum(fp.begin(), fp.end(), fp.begin());
    std::vector<double> rec(dets.size()), prec(dets.size());
    for (size_t k = 0; k < dets.size(); ++k) {
      rec[k] = npos > 0 ? tp[k] / npos : 0;
      prec[k] = tp[k] / std::max(tp[k] + fp[k], 1e-12);
    }
    double ap = 0;
    if (eleven_point_) {
      for (int i = 0; i <= 10; ++i) {
        const double t = i / 10.0;
        double p = 0;
        for (size_t k = 0; k < rec.size(); ++k) {
          if (rec[k] >= t) p = std::max(p, prec[k]);
        }
        ap += p / 11;
      }
    } else {
      std::vector<double> mrec = {0}, mpre = {0};
      mrec.insert(mrec.end(), rec.begin(), rec.end());
      mpre.insert(mpre.end(), prec.begin(), prec.end());
      mrec.push_back(1);
      mpre.push_back(0);
      for (size_t i = mpre.size() - 1; i > 0; --i) mpre[i - 1] = std::max(mpre[i - 1], mpre[i]);
      for (size_t i = 1; i < mrec.size(); ++i) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
    }
    result[label] = ap;
  }
  return result;
}

double VocEvaluator::MeanAp() const {
  const auto per_class = PerClassAp();
  if (per_class.empty()) return 0;
  double sum = 0;
  for (const auto& [label, ap] : per_class) sum += ap;
  return sum / per_class.size();
}

}  // namespace spnas
