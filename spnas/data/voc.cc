// VocDetection: Pascal VOC XML annotations + JPEG images.
#include <ATen/ATen.h>
#include <tinyxml2.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "spnas/data/data_options.pb.h"
#include "spnas/data/dataset.h"
#include "spnas/data/image_io.h"

namespace spnas {
namespace {

namespace fs = std::filesystem;

const char* const kVocClasses[] = {
    "aeroplane",   "bicycle", "bird",  "boat",      "bottle", "bus",         "car",   "cat",  "chair", "cow",
    "diningtable", "dog",     "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

struct VocObject {
  int64_t label;
  std::array<float, 4> box;  // x1, y1, x2, y2 (VOC's 1-based xmin/ymin shifted by -1)
  bool difficult;
};

struct VocImage {
  std::string id;
  std::vector<VocObject> objects;
};

class VocDetection : public DetectionDataset {
 public:
  using Options = VocDetectionOptions;
  explicit VocDetection(const Options& options) : options_(options) {}
  static Status ValidateOptions(const Options& o) {
    if (o.root().empty()) return InvalidArgumentError("root is required (the VOC2007/VOC2012 folder)");
    if (o.image_set().empty()) return InvalidArgumentError("image_set is required (e.g. \"trainval\")");
    return Status::Ok();
  }

  Status Load() override {
    const fs::path root(options_.root());
    const fs::path list = root / "ImageSets" / "Main" / (options_.image_set() + ".txt");
    std::ifstream in(list);
    if (!in) return NotFoundError("VOC image set '", list.string(), "' does not exist");
    std::map<std::string, int64_t> label_of;
    for (int i = 0; i < 20; ++i) label_of[kVocClasses[i]] = i + 1;
    std::string id;
    std::vector<std::string> problems;
    while (in >> id) {
      const std::string xml = (root / "Annotations" / (id + ".xml")).string();
      VocImage image{id, {}};
      std::string problem = Parse(xml, label_of, &image);
      if (problem.empty() && !fs::exists(root / "JPEGImages" / (id + ".jpg"))) {
        problem = "image file '" + (root / "JPEGImages" / (id + ".jpg")).string() + "' does not exist";
      }
      if (!problem.empty()) {
        problems.push_back(problem);
        continue;
      }
      images_.push_back(std::move(image));
      if (options_.has_max_images() && static_cast<int64_t>(images_.size()) >= options_.max_images()) break;
    }
    if (!problems.empty() && !options_.skip_bad_samples()) {
      std::string text;
      for (size_t i = 0; i < problems.size() && i < 10; ++i) text += "\n  " + problems[i];
      return InvalidArgumentError("VOC '", options_.root(), "': ", problems.size(), " bad images", text,
                                  "\nFix them, or set skip_bad_samples: true to skip (and count) them.");
    }
    skipped_ = static_cast<int64_t>(problems.size());
    return Status::Ok();
  }

  int64_t Size() const override { return static_cast<int64_t>(images_.size()); }
  std::vector<std::string> ClassNames() const override {
    std::vector<std::string> names = {"__background__"};
    names.insert(names.end(), std::begin(kVocClasses), std::end(kVocClasses));
    return names;
  }
  std::string Statistics() const override {
    std::vector<int64_t> per_class(21, 0);
    int64_t objects = 0, difficult = 0;
    for (const VocImage& im : images_) {
      for (const VocObject& o : im.objects) {
        ++objects;
        difficult += o.difficult;
        ++per_class[o.label];
      }
    }
    std::ostringstream os;
    os << images_.size() << " images (" << skipped_ << " bad ones skipped), " << objects << " objects (" << difficult
       << " difficult); per class:";
    for (int c = 1; c <= 20; ++c) os << " " << kVocClasses[c - 1] << "=" << per_class[c];
    return os.str();
  }

  DetectionSample Get(int64_t index) const override {
    const VocImage& im = images_.at(index);
    StatusOr<at::Tensor> image = ReadImage((fs::path(options_.root()) / "JPEGImages" / (im.id + ".jpg")).string());
    if (!image.ok()) throw std::runtime_error(image.status().message());
    DetectionSample s;
    s.image = *image;
    s.image_id = index;
    std::vector<float> boxes, hard;
    std::vector<int64_t> labels, hard_labels;
    for (const VocObject& o : im.objects) {
      const bool keep = !o.difficult || options_.use_difficult();
      (keep ? boxes : hard).insert((keep ? boxes : hard).end(), o.box.begin(), o.box.end());
      (keep ? labels : hard_labels).push_back(o.label);
    }
    s.target.boxes = at::tensor(boxes, at::kFloat).reshape({-1, 4});
    s.target.labels = at::tensor(labels, at::kLong).reshape({-1});
    s.crowd_boxes = at::tensor(hard, at::kFloat).reshape({-1, 4});
    s.crowd_labels = at::tensor(hard_labels, at::kLong).reshape({-1});
    return s;
  }

 private:
  static std::string Parse(const std::string& path, const std::map<std::string, int64_t>& label_of, VocImage* image) {
    tinyxml2::XMLDocument doc;
    if (doc.LoadFile(path.c_str()) != tinyxml2::XML_SUCCESS) {
      return "annotation '" + path + "' cannot be read: " + (doc.ErrorStr() ? doc.ErrorStr() : "");
    }
    const tinyxml2::XMLElement* root = doc.FirstChildElement("annotation");
    if (root == nullptr) return "annotation '" + path + "' has no <annotation> element";
    int width = 0, height = 0;
    if (const auto* size = root->FirstChildElement("size")) {
      if (const auto* w = size->FirstChildElement("width")) w->QueryIntText(&width);
      if (const auto* h = size->FirstChildElement("height")) h->QueryIntText(&height);
    }
    int n = 0;
    for (const auto* o = root->FirstChildElement("object"); o != nullptr; o = o->NextSiblingElement("object"), ++n) {
      const auto* name = o->FirstChildElement("name");
      const auto* box = o->FirstChildElement("bndbox");
      if (name == nullptr || name->GetText() == nullptr || box == nullptr) {
        return "annotation '" + path + "' object " + std::to_string(n) + " lacks <name> or <bndbox>";
      }
      auto label = label_of.find(name->GetText());
      if (label == label_of.end()) {
        return "annotation '" + path + "' object " + std::to_string(n) + " has unknown class '" + name->GetText() + "'";
      }
      float v[4];
      const char* tags[4] = {"xmin", "ymin", "xmax", "ymax"};
      for (int k = 0; k < 4; ++k) {
        const auto* e = box->FirstChildElement(tags[k]);
        if (e == nullptr || e->QueryFloatText(&v[k]) != tinyxml2::XML_SUCCESS) {
          return "annotation '" + path + "' object " + std::to_string(n) + " lacks a numeric <" + tags[k] + ">";
        }
      }
      const std::array<float, 4> b = {v[0] - 1, v[1] - 1, v[2], v[3]};
      if (b[2] <= b[0] || b[3] <= b[1]) {
        return "annotation '" + path + "' object " + std::to_string(n) + " has an empty box";
      }
      if ((width > 0 && b[2] > width + 1) || (height > 0 && b[3] > height + 1) || b[0] < -1 || b[1] < -1) {
        return "annotation '" + path + "' object " + std::to_string(n) + " lies outside the image";
      }
      int difficult = 0;
      if (const auto* d = o->FirstChildElement("difficult")) d->QueryIntText(&difficult);
      image->objects.push_back({label->second, b, difficult != 0});
    }
    return "";
  }

  Options options_;
  std::vector<VocImage> images_;
  int64_t skipped_ = 0;
};

SPNAS_REGISTER_PLUGIN(DatasetRegistry, VocDetection);

}  // namespace
}  // namespace spnas
