#include "spnas/data/coco.h"

#include <ATen/ATen.h>
#include <simdjson.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spnas/core/files.h"
#include "spnas/data/data_options.pb.h"
#include "spnas/data/image_io.h"

namespace spnas {
namespace fs = std::filesystem;

namespace {

struct Annotation {
  int64_t id;
  int64_t label;
  std::array<double, 4> xywh;
  double area;
  bool crowd;
};

struct ImageRecord {
  int64_t id;
  std::string file;
  int64_t width, height;
  std::vector<Annotation> annotations;
};

// Reads a number field; integers and floats both count.
bool Number(const simdjson::dom::element& e, const char* key, double* out) {
  return e[key].get_double().get(*out) == simdjson::SUCCESS;
}

class CocoDetection : public DetectionDataset {
 public:
  using Options = CocoDetectionOptions;
  explicit CocoDetection(const Options& options) : options_(options) {}
  static Status ValidateOptions(const Options& o) {
    if (o.annotation_file().empty()) return InvalidArgumentError("annotation_file is required");
    if (o.image_dir().empty()) return InvalidArgumentError("image_dir is required");
    return Status::Ok();
  }

  Status Load() override {
    const std::string& path = options_.annotation_file();
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto error = parser.load(path).get(doc)) {
      return InvalidArgumentError("'", path, "' is not readable COCO JSON: ", simdjson::error_message(error));
    }
    simdjson::dom::array images, annotations, categories;
    if (doc["images"].get_array().get(images) || doc["annotations"].get_array().get(annotations) ||
        doc["categories"].get_array().get(categories)) {
      return InvalidArgumentError("'", path, "' needs the arrays \"images\", \"annotations\" and \"categories\"");
    }
    // Categories in id order become labels 1..K.
    std::map<int64_t, std::string> cats;
    for (simdjson::dom::element c : categories) {
      int64_t id;
      std::string_view name;
      if (c["id"].get_int64().get(id) || c["name"].get_string().get(name)) {
        return InvalidArgumentError("'", path, "': a category lacks an integer \"id\" or a \"name\"");
      }
      cats[id] = std::string(name);
    }
    names_ = {"__background__"};
    std::map<int64_t, int64_t> label_of;
    for (const auto& [id, name] : cats) {
      label_of[id] = static_cast<int64_t>(names_.size());
      names_.push_back(name);
      category_ids_.push_back(id);
    }
    std::map<int64_t, size_t> index_of;
    std::vector<ImageRecord> records;
    for (simdjson::dom::element im : images) {
      ImageRecord r;
      std::string_view file;
      if (im["id"].get_int64().get(r.id) || im["file_name"].get_string().get(file) ||
          im["width"].get_int64().get(r.width) || im["height"].get_int64().get(r.height)) {
        return InvalidArgumentError("'", path, "': an image lacks \"id\", \"file_name\", \"width\" or \"height\"");
      }
      r.file = std::string(file);
      index_of[r.id] = records.size();
      records.push_back(std::move(r));
    }
    std::map<int64_t, std::string> bad;  // image id -> first problem
    int64_t total = 0;
    for (simdjson::dom::element a : annotations) {
      Annotation ann;
      int64_t image_id, category;
      simdjson::dom::array bbox;
      if (a["id"].get_int64().get(ann.id) || a["image_id"].get_int64().get(image_id) ||
          a["category_id"].get_int64().get(category) || a["bbox"].get_array().get(bbox)) {
        return InvalidArgumentError("'", path,
                                    "': an annotation lacks \"id\", \"image_id\", \"category_id\" or \"bbox\"");
      }
      auto image_it = index_of.find(image_id);
      if (image_it == index_of.end()) {
        return InvalidArgumentError("'", path, "': annotation ", ann.id, " refers to image_id ", image_id,
                                    ", which is not in \"images\"");
      }
      ImageRecord& r = records[image_it->second];
      auto fail = [&](const std::string& why) {
        if (!bad.count(r.id)) bad[r.id] = StrCat("annotation ", ann.id, " of image '", r.file, "': ", why);
      };
      auto label_it = label_of.find(category);
      if (label_it == label_of.end()) {
        fail(StrCat("category_id ", category, " is not in \"categories\""));
        continue;
      }
      ann.label = label_it->second;
      int k = 0;
      for (simdjson::dom::element v : bbox) {
        if (k < 4 && v.get_double().get(ann.xywh[k])) k = 99;
        ++k;
      }
      if (k != 4) {
        fail("bbox must be 4 numbers [x, y, width, height]");
        continue;
      }
      int64_t crowd = 0;
      if (a["iscrowd"].get_int64().get(crowd)) crowd = 0;
      ann.crowd = crowd != 0;
      if (!Number(a, "area", &ann.area)) ann.area = ann.xywh[2] * ann.xywh[3];
      const auto& b = ann.xywh;
      std::ostringstream box;
      box << "[" << b[0] << ", " << b[1] << ", " << b[2] << ", " << b[3] << "]";
      if (b[2] < 0 || b[3] < 0) {
        fail(StrCat("box ", box.str(), " has a negative width or height"));
        continue;
      }
      if (b[2] == 0 || b[3] == 0) {
        // Zero-size boxes exist in COCO itself; torchvision drops them too.
        ++dropped_degenerate_;
        continue;
      }
      if (b[0] < -1 || b[1] < -1 || b[0] + b[2] > r.width + 1 || b[1] + b[3] > r.height + 1) {
        fail(StrCat("box ", box.str(), " lies outside the ", r.width, "x", r.height, " image"));
        continue;
      }
      r.annotations.push_back(ann);
      ++total;
    }
    for (ImageRecord& r : records) {
      if (!fs::exists(fs::path(options_.image_dir()) / r.file) && !bad.count(r.id)) {
        bad[r.id] = StrCat("image file '", (fs::path(options_.image_dir()) / r.file).string(), "' does not exist");
      }
    }
    if (!bad.empty() && !options_.skip_bad_samples()) {
      std::string list;
      int shown = 0;
      for (const auto& [id, why] : bad) {
        if (shown++ < 10) list += "\n  " + why;
      }
      return InvalidArgumentError("'", path, "': ", bad.size(), " images have bad annotations or files", list,
                                  bad.size() > 10 ? "\n  ..." : "",
                                  "\nFix them, or set skip_bad_samples: true to skip (and count) those images.");
    }
    skipped_ = static_cast<int64_t>(bad.size());
    for (ImageRecord& r : records) {
      if (bad.count(r.id)) continue;
      bool has_object = false;
      for (const auto& a : r.annotations) has_object |= !a.crowd;
      if (options_.skip_empty_images() && !has_object) continue;
      images_.push_back(std::move(r));
      if (options_.has_max_images() && static_cast<int64_t>(images_.size()) >= options_.max_images()) break;
    }
    return Status::Ok();
  }

  int64_t Size() const override { return static_cast<int64_t>(images_.size()); }
  std::vector<std::string> ClassNames() const override { return names_; }
  int64_t CategoryId(int64_t label) const override { return category_ids_.at(label - 1); }

  std::string Statistics() const override {
    std::vector<int64_t> per_class(names_.size(), 0);
    int64_t boxes = 0, crowd = 0, empty = 0, min_side = INT64_MAX, max_side = 0;
    for (const ImageRecord& r : images_) {
      min_side = std::min({min_side, r.width, r.height});
      max_side = std::max({max_side, r.width, r.height});
      empty += r.annotations.empty();
      for (const Annotation& a : r.annotations) {
        if (a.crowd) {
          ++crowd;
        } else {
          ++boxes;
          ++per_class[a.label];
        }
      }
    }
    std::ostringstream os;
    os << images_.size() << " images (" << skipped_ << " bad ones skipped), " << boxes << " boxes, " << crowd
       << " crowd regions, " << dropped_degenerate_ << " zero-size boxes dropped, " << empty
       << " images without annotations, image sides " << min_side << ".." << max_side << "; boxes per class:";
    for (size_t c = 1; c < names_.size(); ++c) os << " " << names_[c] << "=" << per_class[c];
    return os.str();
  }

  DetectionSample Get(int64_t index) const override {
    const ImageRecord& r = images_.at(index);
    const std::string file = (fs::path(options_.image_dir()) / r.file).string();
    StatusOr<at::Tensor> image = ReadImage(file);
    if (!image.ok()) throw std::runtime_error(image.status().message());
    DetectionSample s;
    s.image = *image;
    s.image_id = r.id;
    std::vector<float> boxes, crowd, areas;
    std::vector<int64_t> labels, crowd_labels;
    for (const Annotation& a : r.annotations) {
      const auto& b = a.xywh;
      const std::vector<float> xyxy = {static_cast<float>(b[0]), static_cast<float>(b[1]),
                                       static_cast<float>(b[0] + b[2]), static_cast<float>(b[1] + b[3])};
      if (a.crowd) {
        crowd.insert(crowd.end(), xyxy.begin(), xyxy.end());
        crowd_labels.push_back(a.label);
      } else {
        boxes.insert(boxes.end(), xyxy.begin(), xyxy.end());
        labels.push_back(a.label);
        areas.push_back(static_cast<float>(a.area));
      }
    }
    s.target.boxes = at::tensor(boxes, at::kFloat).reshape({-1, 4});
    s.target.labels = at::tensor(labels, at::kLong).reshape({-1});
    s.areas = at::tensor(areas, at::kFloat).reshape({-1});
    s.crowd_boxes = at::tensor(crowd, at::kFloat).reshape({-1, 4});
    s.crowd_labels = at::tensor(crowd_labels, at::kLong).reshape({-1});
    return s;
  }

 private:
  Options options_;
  std::vector<std::string> names_;
  std::vector<int64_t> category_ids_;
  std::vector<ImageRecord> images_;
  int64_t skipped_ = 0, dropped_degenerate_ = 0;
};

SPNAS_REGISTER_PLUGIN(DatasetRegistry, CocoDetection);

}  // namespace

Status ExportCoco(const DetectionDataset& dataset, const std::string& dir, int64_t limit) {
  SPNAS_RETURN_IF_ERROR(MakeDirs(dir + "/images"));
  nlohmann::json images = nlohmann::json::array(), annotations = nlohmann::json::array(),
                 categories = nlohmann::json::array();
  const std::vector<std::string> names = dataset.ClassNames();
  for (size_t c = 1; c < names.size(); ++c) {
    categories.push_back({{"id", dataset.CategoryId(static_cast<int64_t>(c))}, {"name", names[c]}});
  }
  const int64_t n = limit > 0 ? std::min(limit, dataset.Size()) : dataset.Size();
  int64_t next_annotation = 1;
  for (int64_t i = 0; i < n; ++i) {
    const DetectionSample s = dataset.Get(i);
    const std::string file = std::to_string(s.image_id) + ".png";
    SPNAS_RETURN_IF_ERROR(WriteImage(dir + "/images/" + file, s.image));
    images.push_back(
        {{"id", s.image_id}, {"file_name", file}, {"width", s.image.size(2)}, {"height", s.image.size(1)}});
    const at::Tensor b = s.target.boxes.to(at::kDouble);
    for (int64_t k = 0; k < b.size(0); ++k) {
      const double x1 = b[k][0].item<double>(), y1 = b[k][1].item<double>();
      const double w = b[k][2].item<double>() - x1, h = b[k][3].item<double>() - y1;
      annotations.push_back({{"id", next_annotation++},
                             {"image_id", s.image_id},
                             {"category_id", dataset.CategoryId(s.target.labels[k].item<int64_t>())},
                             {"bbox", {x1, y1, w, h}},
                             {"area", w * h},
                             {"iscrowd", 0}});
    }
  }
  const nlohmann::json doc = {{"images", images}, {"annotations", annotations}, {"categories", categories}};
  return WriteFileAtomic(dir + "/annotations.json", doc.dump());
}

std::string CocoResultsJson(const std::vector<CocoResult>& results) {
  nlohmann::json out = nlohmann::json::array();
  for (const CocoResult& r : results) {
    out.push_back({{"image_id", r.image_id},
                   {"category_id", r.category_id},
                   {"bbox", {r.bbox[0], r.bbox[1], r.bbox[2], r.bbox[3]}},
                   {"score", r.score}});
  }
  return out.dump();
}

StatusOr<std::vector<CocoResult>> ReadCocoResults(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto error = parser.load(path).get(doc)) {
    return InvalidArgumentError("'", path, "' is not readable JSON: ", simdjson::error_message(error));
  }
  simdjson::dom::array array;
  if (doc.get_array().get(array)) return InvalidArgumentError("'", path, "' must be a JSON array of detections");
  std::vector<CocoResult> results;
  size_t index = 0;
  for (simdjson::dom::element e : array) {
    CocoResult r;
    simdjson::dom::array bbox;
    if (e["image_id"].get_int64().get(r.image_id) || e["category_id"].get_int64().get(r.category_id) ||
        e["bbox"].get_array().get(bbox) || !Number(e, "score", &r.score)) {
      return InvalidArgumentError("'", path, "': detection ", index,
                                  " needs \"image_id\", \"category_id\", \"bbox\" and \"score\"");
    }
    int k = 0;
    for (simdjson::dom::element v : bbox) {
      if (k < 4 && v.get_double().get(r.bbox[k])) k = 99;
      ++k;
    }
    if (k != 4) return InvalidArgumentError("'", path, "': detection ", index, " bbox must be 4 numbers");
    results.push_back(r);
    ++index;
  }
  return results;
}

}  // namespace spnas
