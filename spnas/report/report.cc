#include "spnas/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "spnas/core/files.h"
#include "spnas/core/record_store.h"
#include "spnas/core/step_folder.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Metric(const TrialRecord& r, const std::string& key) {
  auto it = r.metrics().find(key);
  if (it == r.metrics().end()) return "";
  if (key == "params") return Fixed(it->second / 1e6, 3) + "M";
  if (key == "flops") return Fixed(it->second / 1e9, 3) + "G";
  return Fixed(it->second, 2);
}

std::string Architecture(const TrialRecord& r) {
  std::string s;
  for (const auto& [k, v] : r.hyperparameters())
    s += (s.empty() ? "" : "<br>") + Escape(k.substr(k.rfind('.', k.rfind('.') - 1) + 1) + " " + v);
  return s;
}

// The curves of a trial (its metrics_<id>.jsonl): training loss and mAP against iterations,
// each scaled to its own range, linked to the file. "" when the trial has no metrics log.
std::string Sparkline(const std::string& jsonl, const std::string& output_dir) {
  std::ifstream in(jsonl);
  if (!in) return "";
  std::vector<std::pair<double, double>> loss, map;
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("iteration") || !j["iteration"].is_number()) continue;
    const double it = j["iteration"].get<double>();
    if (j.contains("loss") && j["loss"].is_number()) loss.emplace_back(it, j["loss"].get<double>());
    if (j.contains("mAP") && j["mAP"].is_number()) map.emplace_back(it, j["mAP"].get<double>());
  }
  if (loss.empty() && map.empty()) return "";
  const double w = 140, h = 30, pad = 3;
  double last = 1;
  for (const auto& series : {loss, map}) {
    for (const auto& [x, y] : series) last = std::max(last, x);
  }
  std::ostringstream svg;
  auto polyline = [&](const std::vector<std::pair<double, double>>& series, const char* color) {
    if (series.empty()) return;
    double lo = series[0].second, hi = lo;
    for (const auto& [x, y] : series) lo = std::min(lo, y), hi = std::max(hi, y);
    if (hi - lo < 1e-12) hi = lo + 1;
    svg << "<polyline fill='none' stroke='" << color << "' stroke-width='1.2' points='";
    for (const auto& [x, y] : series) {
      svg << Fixed(pad + x / last * (w - 2 * pad), 1) << "," << Fixed(h - pad - (y - lo) / (hi - lo) * (h - 2 * pad), 1)
          << " ";
    }
    svg << "'/>";
  };
  std::string title;
  if (!loss.empty()) title += "loss " + Fixed(loss.front().second, 3) + " to " + Fixed(loss.back().second, 3);
  if (!map.empty()) title += std::string(title.empty() ? "" : ", ") + "mAP " + Fixed(map.back().second, 2);
  svg << "<a href='" << Escape(fs::path(jsonl).lexically_relative(output_dir).string()) << "'><svg width='" << w
      << "' height='" << h << "' role='img'><title>" << Escape(title) << " (iterations 0.." << last
      << ")</title><rect width='" << w << "' height='" << h << "' fill='#fafafa'/>";
  polyline(loss, "#4e79a7");
  polyline(map, "#59a14f");
  svg << "</svg></a>";
  return svg.str();
}

struct StepRecords {
  std::string name;
  std::string trials_dir;  // where the trials' records and metrics logs are
  std::vector<Trial> trials;
  std::set<int> selected;
};

struct Point {
  double x, y;
  std::string step, label;
  bool front, seed, final_model;
};

// A cost the trials are plotted against: metric key, axis title, and the unit it is divided by.
struct Axis {
  const char* key;
  const char* title;
  double unit;
};
constexpr Axis kAxes[] = {{"params", "parameters (millions)", 1e6},
                          {"flops", "multiply-adds (billions)", 1e9},
                          {"latency_ms", "latency (ms)", 1}};

std::string Plot(const std::vector<Point>& points, const std::vector<std::string>& steps, const Axis& axis) {
  const double w = 720, h = 420, left = 70, right = 160, top = 20, bottom = 50;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Point& p : points) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  const double dx = std::max((x1 - x0) * 0.08, 0.01), dy = std::max((y1 - y0) * 0.1, 0.5);
  x0 -= dx, x1 += dx, y0 -= dy, y1 += dy;
  auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * (w - left - right); };
  auto Y = [&](double y) { return h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom); };
  static const char* kColors[] = {"#4e79a7", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2", "#edc948"};
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h << "' viewBox='0 0 " << w << " "
      << h << "' role='img' aria-label='mAP against " << axis.title << "'>\n";
  svg << "<rect x='" << left << "' y='" << top << "' width='" << w - left - right << "' height='" << h - top - bottom
      << "' fill='#fafafa' stroke='#999'/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    svg << "<text x='" << X(xv) << "' y='" << h - bottom + 18 << "' font-size='11' text-anchor='middle'>"
        << Fixed(xv, 2) << "</text>\n";
    svg << "<text x='" << left - 6 << "' y='" << Y(yv) + 4 << "' font-size='11' text-anchor='end'>" << Fixed(yv, 1)
        << "</text>\n";
    svg << "<line x1='" << X(xv) << "' y1='" << top << "' x2='" << X(xv) << "' y2='" << h - bottom
        << "' stroke='#e3e3e3'/>\n";
  }
  svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 10 << "' font-size='12' text-anchor='middle'>"
      << axis.title << "</text>\n";
  svg << "<text x='16' y='" << (top + h - bottom) / 2
      << "' font-size='12' text-anchor='middle' transform='rotate(-90 16 " << (top + h - bottom) / 2
      << ")'>mAP (COCO, %)</text>\n";
  // Each step's Pareto front as a line.
  for (size_t s = 0; s < steps.size(); ++s) {
    std::vector<Point> front;
    for (const Point& p : points) {
      if (p.step == steps[s] && p.front) front.push_back(p);
    }
    std::sort(front.begin(), front.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
    if (front.size() > 1) {
      svg << "<polyline fill='none' stroke='" << kColors[s % 6]
          << "' stroke-width='1.5' stroke-dasharray='4 3' points='";
      for (const Point& p : front) svg << X(p.x) << "," << Y(p.y) << " ";
      svg << "'/>\n";
    }
  }
  for (const Point& p : points) {
    const size_t s = std::find(steps.begin(), steps.end(), p.step) - steps.begin();
    const std::string color = kColors[s % 6];
    svg << "<g><title>" << Escape(p.step + " " + p.label) << "</title>";
    if (p.final_model) {
      svg << "<polygon points='";
      for (int k = 0; k < 10; ++k) {
        const double r = k % 2 ? 5 : 12, a = M_PI / 5 * k - M_PI / 2;
        svg << X(p.x) + r * std::cos(a) << "," << Y(p.y) + r * std::sin(a) << " ";
      }
      svg << "' fill='#e15759' stroke='#000'/>";
    } else if (p.seed) {
      svg << "<rect x='" << X(p.x) - 6 << "' y='" << Y(p.y) - 6 << "' width='12' height='12' fill='" << color
          << "' stroke='#000' stroke-width='2'/>";
    } else {
      svg << "<circle cx='" << X(p.x) << "' cy='" << Y(p.y) << "' r='" << (p.front ? 6 : 4) << "' fill='"
          << (p.front ? color : "#ffffff") << "' stroke='" << color << "' stroke-width='2'/>";
    }
    svg << "</g>\n";
  }
  // Legend.
  double ly = top + 10;
  for (size_t s = 0; s < steps.size(); ++s, ly += 18) {
    svg << "<circle cx='" << w - right + 16 << "' cy='" << ly << "' r='5' fill='" << kColors[s % 6] << "'/><text x='"
        << w - right + 28 << "' y='" << ly + 4 << "' font-size='12'>" << Escape(steps[s]) << "</text>\n";
  }
  svg << "<rect x='" << w - right + 10 << "' y='" << ly - 6
      << "' width='12' height='12' fill='#ccc' stroke='#000' stroke-width='2'/><text x='" << w - right + 28 << "' y='"
      << ly + 4 << "' font-size='12'>seed (start)</text>\n";
  ly += 18;
  svg << "<circle cx='" << w - right + 16 << "' cy='" << ly << "' r='6' fill='#999'/><text x='" << w - right + 28
      << "' y='" << ly + 4 << "' font-size='12'>Pareto front</text>\n";
  ly += 18;
  svg << "<circle cx='" << w - right + 16 << "' cy='" << ly
      << "' r='4' fill='#fff' stroke='#999' stroke-width='2'/><text x='" << w - right + 28 << "' y='" << ly + 4
      << "' font-size='12'>other trials</text>\n";
  ly += 18;
  svg << "<text x='" << w - right + 10 << "' y='" << ly + 5 << "' font-size='16' fill='#e15759'>&#9733;</text><text x='"
      << w - right + 28 << "' y='" << ly + 4 << "' font-size='12'>final model</text>\n";
  svg << "</svg>";
  return svg.str();
}

}  // namespace

StatusOr<std::string> WriteReport(const LoadedConfig& config) {
  std::vector<StepRecords> steps;
  for (const StepConfig& step : config.config().step()) {
    StepRecords s;
    s.name = step.name();
    const std::string dir = config.OutputDir(step.name());
    s.trials_dir = StepFolder(dir).AllTrialsDir();
    SPNAS_ASSIGN_OR_RETURN(s.trials, RecordStore(s.trials_dir).LoadAll());
    SPNAS_ASSIGN_OR_RETURN(std::vector<Trial> selected, RecordStore(dir).LoadAll());
    for (const Trial& t : selected) s.selected.insert(t.record.id());
    steps.push_back(std::move(s));
  }
  // The final model: the best record (by mAP) of general.final_step, or of the last step with one.
  const Trial* final_trial = nullptr;
  std::string final_step;
  const std::string& wanted = config.config().general().final_step();
  for (auto it = steps.rbegin(); it != steps.rend() && final_trial == nullptr; ++it) {
    if (!wanted.empty() && it->name != wanted) continue;
    for (const Trial& t : it->trials) {
      if (t.record.status() != FINISHED || !it->selected.count(t.record.id()) || !t.record.metrics().count("mAP"))
        continue;
      if (final_trial == nullptr || t.record.metrics().at("mAP") > final_trial->record.metrics().at("mAP")) {
        final_trial = &t;
        final_step = it->name;
      }
    }
  }

  // The finished trials with mAP and the axis's cost, and the steps that have any.
  auto points_for = [&](const Axis& axis, std::vector<std::string>* plotted) {
    std::vector<Point> points;
    for (const StepRecords& s : steps) {
      bool any = false;
      for (const Trial& t : s.trials) {
        const auto& m = t.record.metrics();
        if (t.record.status() != FINISHED || !m.count("mAP") || !m.count(axis.key)) continue;
        Point p{m.at(axis.key) / axis.unit, m.at("mAP"), s.name, "", false, false, false};
        std::string arch;
        for (const auto& [k, v] : t.record.hyperparameters()) arch += " " + v;
        p.label = StrCat("trial ", t.record.id(), ":", arch, " mAP ", Fixed(p.y, 2), " ", axis.key, " ", Fixed(p.x, 3));
        p.front = s.selected.count(t.record.id()) > 0 && s.trials.size() > s.selected.size();
        p.seed = t.record.mutations().empty() && !t.record.parent().empty() &&
                 t.record.parent().rfind(s.name + "/", 0) != 0 && s.trials.size() > 1;
        p.final_model = final_trial == &t;
        points.push_back(p);
        any = true;
      }
      if (any) plotted->push_back(s.name);
    }
    return points;
  };

  const std::string output_dir = config.base_path() + "/output";
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>spnas report: "
       << Escape(fs::path(config.path()).filename().string()) << "</title>\n<style>\n"
       << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}h1{font-size:22px}h2{font-size:18px;"
          "margin-top:28px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
          "text-align:right}th{background:#f0f0f0}td.l{text-align:left}tr.sel{background:#eef6ee}tr.bad{color:#a00}"
          ".muted{color:#777;font-size:13px}code{background:#f4f4f4;padding:1px 4px}\n</style></head><body>\n";
  html << "<h1>SP-NAS report</h1>\n<p class='muted'>config <code>" << Escape(config.path()) << "</code>, output <code>"
       << Escape(config.base_path()) << "/output</code></p>\n";
  if (final_trial != nullptr) {
    const TrialRecord& r = final_trial->record;
    html << "<h2>Final model</h2>\n<p>step <b>" << Escape(final_step) << "</b>, record " << r.id() << " (from "
         << Escape(r.parent()) << ")<br>" << Architecture(r) << "</p>\n<table><tr>";
    for (const char* k : {"mAP", "AP50", "AP75", "APs", "APm", "APl", "VOC_AP50", "params", "flops", "latency_ms"}) {
      if (r.metrics().count(k)) html << "<th>" << k << "</th>";
    }
    html << "</tr><tr>";
    for (const char* k : {"mAP", "AP50", "AP75", "APs", "APm", "APl", "VOC_AP50", "params", "flops", "latency_ms"}) {
      if (r.metrics().count(k)) html << "<td>" << Metric(r, k) << "</td>";
    }
    html << "</tr></table>\n<p class='muted'>weights: <code>" << Escape(final_trial->weights) << "</code></p>\n";
  }
  for (const Axis& axis : kAxes) {
    std::vector<std::string> plotted;
    const std::vector<Point> points = points_for(axis, &plotted);
    if (!points.empty()) {
      html << "<h2>Trials: mAP against " << axis.title << "</h2>\n" << Plot(points, plotted, axis) << "\n";
    }
  }
  for (const StepRecords& s : steps) {
    html << "<h2>Step " << Escape(s.name) << "</h2>\n<p class='muted'>" << s.trials.size() << " trials, "
         << s.selected.size() << " in the step's output (shaded)</p>\n";
    std::set<std::string> keys;
    for (const Trial& t : s.trials) {
      for (const auto& [k, v] : t.record.metrics()) keys.insert(k);
    }
    html << "<table><tr><th>id</th><th>status</th><th>architecture</th><th>parent</th><th>mutations</th>";
    for (const auto& k : keys) html << "<th>" << Escape(k) << "</th>";
    html << "<th>seconds</th><th>curves: loss, mAP</th><th>error</th></tr>\n";
    for (const Trial& t : s.trials) {
      const TrialRecord& r = t.record;
      const std::string mutations = MutationsText(r.mutations(), ", ");
      html << "<tr class='"
           << (r.status() != FINISHED     ? "bad"
               : s.selected.count(r.id()) ? "sel"
                                          : "")
           << "'><td>" << r.id() << "</td><td class='l'>" << TrialStatus_Name(r.status()) << "</td><td class='l'>"
           << Architecture(r) << "</td><td class='l'>" << Escape(r.parent()) << "</td><td class='l'>"
           << Escape(mutations) << "</td>";
      for (const auto& k : keys) html << "<td>" << Metric(r, k) << "</td>";
      html << "<td>" << Fixed(r.train_seconds(), 1) << "</td><td>"
           << Sparkline(StepFolder::MetricsLogPath(s.trials_dir, r.id()), output_dir) << "</td><td class='l'>"
           << Escape(r.error()) << "</td></tr>\n";
    }
    html << "</table>\n";
  }
  html << "</body></html>\n";
  const std::string path = output_dir + "/report.html";
  SPNAS_RETURN_IF_ERROR(WriteFileAtomic(path, html.str()));
  return path;
}

}  // namespace spnas
