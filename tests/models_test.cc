// SerialBackbone, SerialClassificationNet, FasterRCNN layouts and costs against torchvision
// (tests/fixtures/models.pt and resnet50_layout.txt, made by tools/golden/make_model_fixtures.py),
// and weight inheritance: children computing exactly what their parents compute.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "spnas/device/device.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/cost.h"
#include "spnas/models/inheritance.h"
#include "spnas/models/model.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/models/searchable.h"
#include "spnas/models/state_dict.h"
#include "tests/fixture.h"

namespace spnas {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

PluginConfig Plugin(const std::string& type, const google::protobuf::Message& options) {
  PluginConfig c;
  c.set_type(type);
  c.mutable_options()->PackFrom(options);
  return c;
}

PluginConfig ResNetBackbone(int depth) {
  ResNetOptions o;
  o.set_depth(depth);
  return Plugin("ResNet", o);
}

std::shared_ptr<Model> Build(const PluginConfig& c) {
  auto m = ModelRegistry().Create(c.type(), c.options());
  EXPECT_TRUE(m.ok()) << m.status();
  return std::shared_ptr<Model>(std::move(m).value().release());
}

// name -> shape string, from resnet50_layout.txt
std::map<std::string, std::string> Layout(const std::string& model) {
  std::ifstream in("tests/fixtures/resnet50_layout.txt");
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string m, name, shape;
    f >> m >> name;
    std::getline(f, shape);
    if (m == model) out[name] = shape.substr(1);
  }
  return out;
}

std::map<std::string, std::string> OurLayout(const torch::nn::Module& module) {
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : GetStateDict(module)) {
    std::string s = "[";
    for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
    out[name] = s + "]";
  }
  return out;
}

TEST(SerialBackboneTest, ResNet50ClassifierHasTorchvisionNamesShapesAndParameterCount) {
  SerialClassificationNetOptions o;
  *o.mutable_backbone() = ResNetBackbone(50);
  o.set_num_classes(1000);
  auto model = Build(Plugin("SerialClassificationNet", o));
  EXPECT_EQ(OurLayout(*model), Layout("resnet50"));
  EXPECT_EQ(CountParameters(*model), 25557032);
}

TEST(SerialBackboneTest, Code111_2111_211111_211WithBottleneckIsResNet50) {
  SerialBackboneOptions serial;
  serial.set_code("111-2111-211111-211");
  serial.set_block(BOTTLENECK);
  SerialClassificationNetOptions o;
  *o.mutable_backbone() = Plugin("SerialBackbone", serial);
  o.set_num_classes(1000);
  EXPECT_EQ(OurLayout(*Build(Plugin("SerialClassificationNet", o))), Layout("resnet50"));
}

TEST(SerialBackboneTest, FasterRCNNResNet50FPNHasTorchvisionLayoutAndCount) {
  auto model = Build(Plugin("FasterRCNN", FasterRCNNOptions()));  // torchvision's defaults
  EXPECT_EQ(OurLayout(*model), Layout("fasterrcnn_resnet50_fpn"));
  EXPECT_EQ(CountParameters(*model), 41808406);
}

TEST(SerialBackboneTest, FlopsMatchAnIndependentCount) {
  const auto fixture = testing::LoadFixture("tests/fixtures/models.pt");
  SerialClassificationNetOptions o;
  *o.mutable_backbone() = ResNetBackbone(50);
  o.set_num_classes(1000);
  auto model = std::dynamic_pointer_cast<Classifier>(Build(Plugin("SerialClassificationNet", o)));
  model->eval();
  const double ours = CountMultiplyAdds([&] { model->Forward(at::zeros({1, 3, 224, 224})); });
  const double theirs = fixture.at("resnet50.macs_224").item<double>();
  EXPECT_NEAR(ours / theirs, 1.0, 0.01) << ours << " vs " << theirs;
}

TEST(SerialBackboneTest, NarrowResNet50OutputsMatchTorchvision) {
  const auto fixture = testing::LoadFixture("tests/fixtures/models.pt");
  SerialBackboneOptions serial;
  serial.set_code("111-2111-211111-211");
  serial.set_block(BOTTLENECK);
  serial.set_stem_width(4);
  SerialClassificationNetOptions o;
  *o.mutable_backbone() = Plugin("SerialBackbone", serial);
  o.set_num_classes(10);
  auto model = std::dynamic_pointer_cast<Classifier>(Build(Plugin("SerialClassificationNet", o)));
  StateDict state;
  for (const auto& [k, v] : fixture) {
    if (k.rfind("narrow.", 0) == 0) state[k.substr(7)] = v;
  }
  const LoadReport report = LoadStateDict(*model, state);
  ASSERT_TRUE(report.missing.empty() && report.mismatched.empty()) << report.Summary();
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor logits = model->Forward(fixture.at("narrow.input"));
  EXPECT_LT((logits - fixture.at("narrow.logits")).abs().max().item<double>(), 1e-4);
  const double macs = CountMultiplyAdds([&] { model->Forward(fixture.at("narrow.input").slice(0, 0, 1)); });
  EXPECT_NEAR(macs / fixture.at("narrow.macs_64x80").item<double>(), 1.0, 0.01);
}

TEST(SerialBackboneTest, InvalidCodesAreRejectedWithTheRule) {
  EXPECT_THAT(ParseSerialCode("11-21-2x-21").status().message(), HasSubstr("has 'x'"));
  EXPECT_THAT(ParseSerialCode("11--21-21-21").status().message(), HasSubstr("an empty stage"));
  EXPECT_THAT(ParseSerialCode("11-21-21").status().message(), HasSubstr("3 stages; 4 to 7 are allowed"));
  EXPECT_THAT(ParseSerialCode("1-2-2-2").status().message(), HasSubstr("4 blocks; 8 to 60 are allowed"));
  EXPECT_THAT(ParseSerialCode("11-21-21-21-").status().message(), HasSubstr("'11-21-21-21-'"));
  EXPECT_TRUE(ParseSerialCode("11-21-21-21").ok());
}

TEST(ModelRegistryTest, WrongNestedPluginNamesAreErrorsNamingTheField) {
  FasterRCNNOptions o;
  *o.mutable_backbone() = ResNetBackbone(18);
  o.mutable_neck()->set_type("FPNN");
  auto model = ModelRegistry().Create("FasterRCNN", Plugin("FasterRCNN", o).options());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(),
              HasSubstr("model 'FasterRCNN': `neck`: No registered neck named 'FPNN'. Did you mean 'FPN'?"));
  o.mutable_neck()->set_type("FPN");
  o.mutable_box_head()->set_type("TwoMLPHeadd");
  model = ModelRegistry().Create("FasterRCNN", Plugin("FasterRCNN", o).options());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("`box_head`: No registered head named 'TwoMLPHeadd'"));
  SerialBackboneOptions bad_code;
  bad_code.set_code("11-2x");
  *o.mutable_backbone() = Plugin("SerialBackbone", bad_code);
  o.mutable_box_head()->set_type("TwoMLPHead");
  model = ModelRegistry().Create("FasterRCNN", Plugin("FasterRCNN", o).options());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("`backbone`: backbone 'SerialBackbone':"));
}

TEST(ModelRegistryTest, ConstructorChecksAreErrors) {
  FasterRCNNOptions o;
  *o.mutable_backbone() = ResNetBackbone(18);
  for (int size : {8, 16, 32, 64, 128, 256, 512}) o.add_anchor_sizes(size);  // more than the levels
  auto model = ModelRegistry().Create("FasterRCNN", Plugin("FasterRCNN", o).options());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("model 'FasterRCNN' cannot be built: FasterRCNN: the neck gives 5"));
  EXPECT_THAT(model.status().message(), Not(HasSubstr("Exception raised from")));
}

TEST(SearchableModelTest, DetectorCodesAreReadAndChangedThroughTheInterface) {
  SerialBackboneOptions serial;
  serial.set_code("11-21-21-21");
  FasterRCNNOptions o;
  *o.mutable_backbone() = Plugin("SerialBackbone", serial);
  FPNOptions fpn;
  fpn.set_out_channels(32);
  *o.mutable_neck() = Plugin("FPN", fpn);
  const PluginConfig detector = Plugin("FasterRCNN", o);
  EXPECT_EQ(SerialCodeOf(detector).value(), "11-21-21-21");
  const PluginConfig longer = WithSerialCode(detector, "11-211-21-21").value();
  EXPECT_EQ(SerialCodeOf(longer).value(), "11-211-21-21");
  EXPECT_THAT(WithSerialCode(detector, "11-2x").status().message(), HasSubstr("has 'x'"));

  const PluginConfig parallel = WithParallelCode(detector, {0, 1, 2, 1}, 0).value();
  FasterRCNNOptions edited;
  ASSERT_TRUE(parallel.options().UnpackTo(&edited));
  SerialBackboneOptions body;
  ASSERT_TRUE(edited.backbone().options().UnpackTo(&body));
  EXPECT_EQ(std::vector<int>(body.parallel_code().begin(), body.parallel_code().end()), (std::vector<int>{0, 1, 2, 1}));
  EXPECT_EQ(body.code(), "11-21-21-21");
  EXPECT_EQ(edited.neck().type(), "FPN");
  FPNOptions neck;
  ASSERT_TRUE(WithParallelCode(detector, {0, 1, 2, 1}, 48)->options().UnpackTo(&edited));
  ASSERT_TRUE(edited.neck().options().UnpackTo(&neck));
  EXPECT_EQ(neck.out_channels(), 48);
  EXPECT_THAT(WithParallelCode(detector, {0, 1, 2}, 0).status().message(),
              HasSubstr("parallel code has 3 entries but the backbone has 4 stages"));
  // A serial edit keeps the parallel structure; a stage added has no extra passes.
  ASSERT_TRUE(WithSerialCode(parallel, "11-21-21-21-1")->options().UnpackTo(&edited));
  ASSERT_TRUE(edited.backbone().options().UnpackTo(&body));
  EXPECT_EQ(std::vector<int>(body.parallel_code().begin(), body.parallel_code().end()),
            (std::vector<int>{0, 1, 2, 1, 0}));

  auto searchable = Searchable(detector).value();
  EXPECT_EQ(searchable->Reignitions().value(), 0);
  ASSERT_TRUE(searchable->SetReignitions(2).ok());
  ASSERT_TRUE(searchable->Description().options().UnpackTo(&edited));
  EXPECT_EQ(edited.reignitions(), 2);
  EXPECT_EQ(Searchable(detector).value()->Backbone().value().type(), "SerialBackbone");

  EXPECT_EQ(SerialCodeOf(Plugin("FasterRCNN", FasterRCNNOptions())).value(), "111-2111-211111-211");  // ResNet-50
  EXPECT_THAT(WithSerialCode(Plugin("FasterRCNN", FasterRCNNOptions()), "11-21-21-21").status().message(),
              HasSubstr("backbone 'ResNet' has no serial code to change"));
  PluginConfig unknown;
  unknown.set_type("MyDetector");
  EXPECT_THAT(SerialCodeOf(unknown).status().message(),
              HasSubstr("model 'MyDetector' cannot be searched or reignited: it registers no SearchableModel"));
  EXPECT_THAT(
      WithParallelCode(Plugin("SerialClassificationNet", SerialClassificationNetOptions()), {1}, 0).status().message(),
      HasSubstr("model 'SerialClassificationNet' does not offer a parallel structure to the search"));
}

TEST(SerialBackboneTest, ResNeXtBlocksWork) {
  ResNetOptions o;
  o.set_depth(50);
  o.set_groups(32);
  o.set_base_width(4);
  auto backbone = BackboneRegistry().Create("ResNet", [&] {
    google::protobuf::Any a;
    a.PackFrom(o);
    return a;
  }());
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ(CountParameters(**backbone), 25028904 - 2049000);  // resnext50_32x4d without fc
  const auto f = (*backbone)->Forward(at::rand({1, 3, 64, 64}));
  EXPECT_EQ(f.stages.back().sizes(), (std::vector<int64_t>{1, 2048, 2, 2}));
}

// A tiny backbone and detector for the parallel-structure and inheritance tests.
SerialBackboneOptions TinyBody(const std::string& code, const std::vector<int>& parallel = {}) {
  SerialBackboneOptions body;
  body.set_code(code);
  body.set_block(BASIC);
  body.set_stem_width(8);
  for (int k : parallel) body.add_parallel_code(k);
  return body;
}

FasterRCNNOptions Tiny(const std::string& code, const std::vector<int>& parallel = {}) {
  FasterRCNNOptions o;
  *o.mutable_backbone() = Plugin("SerialBackbone", TinyBody(code, parallel));
  FPNOptions fpn;
  fpn.set_out_channels(16);
  *o.mutable_neck() = Plugin("FPN", fpn);
  TwoMLPHeadOptions head;
  head.set_representation_size(32);
  *o.mutable_box_head() = Plugin("TwoMLPHead", head);
  o.set_num_classes(5);
  o.add_min_size(96);
  o.set_max_size(96);
  for (int s : {16, 32, 64, 128, 256}) o.add_anchor_sizes(s);
  return o;
}

// "layer<stage>.<index>" of every block of a serial code, in order.
std::vector<std::string> Blocks(const std::string& code) {
  std::vector<std::string> names;
  int stage = 1, index = 0;
  for (char c : code) {
    if (c == '-') {
      ++stage;
      index = 0;
    } else {
      names.push_back("layer" + std::to_string(stage) + "." + std::to_string(index++));
    }
  }
  return names;
}

std::shared_ptr<Backbone> BuildBackbone(const SerialBackboneOptions& options) {
  google::protobuf::Any any;
  any.PackFrom(options);
  return std::shared_ptr<Backbone>(BackboneRegistry().Create("SerialBackbone", any).value().release());
}

// Random BatchNorm statistics and affine parameters, so identity claims are tested for real.
void Randomize(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& item : m.named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().uniform_(-0.2, 0.2);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
  for (auto& item : m.named_parameters()) {
    if (item.key().find("bn") != std::string::npos || item.key().find("downsample.1") != std::string::npos) {
      item.value().uniform_(0.5, 1.5);
    }
  }
}

// Copies every tensor the serial backbone has into the parallel one, by name.
void CopyShared(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const StateDict source = GetStateDict(from);
  for (auto& [name, t] : GetStateDict(to)) {
    auto it = source.find(name);
    if (it != source.end()) at::Tensor(t).copy_(it->second);
  }
}

TEST(ParallelStructureTest, StartsAsItsSerialNetworkAndThenUsesItsPasses) {
  torch::manual_seed(5);
  auto serial = BuildBackbone(TinyBody("11-21-21-21"));
  auto parallel = BuildBackbone(TinyBody("11-21-21-21", {1, 2, 0, 1}));
  CopyShared(*serial, *parallel);
  const at::Tensor images = at::rand({2, 3, 64, 64});
  // Eval first: training updates the stage's BatchNorm statistics once per pass.
  for (bool training : {false, true}) {
    serial->train(training);
    parallel->train(training);
    const BackboneFeatures a = serial->Forward(images), b = parallel->Forward(images);
    for (size_t s = 0; s < a.stages.size(); ++s) EXPECT_TRUE(at::equal(a.stages[s], b.stages[s])) << s;
  }
  // The connections learn: their BatchNorm gamma gets a gradient, and once it is not zero the
  // passes change every later stage.
  parallel->train(true);
  parallel->Forward(images).stages.back().sum().backward();
  const auto params = parallel->named_parameters();
  for (const char* name : {"connect1.1.weight", "connect2.1.weight", "connect4.1.weight"}) {
    ASSERT_NE(params.find(name), nullptr) << name;
    EXPECT_GT(params[name].grad().abs().sum().item<double>(), 0) << name;
  }
  EXPECT_EQ(params.find("connect3.1.weight"), nullptr);  // K = 0: no connection
  {
    torch::NoGradGuard no_grad;
    for (auto& item : parallel->named_parameters()) {
      if (item.key().rfind("connect", 0) == 0 && item.key().find(".1.weight") != std::string::npos)
        item.value().fill_(1);
    }
  }
  parallel->eval();
  serial->eval();
  const BackboneFeatures a = serial->Forward(images), b = parallel->Forward(images);
  for (size_t s = 0; s < a.stages.size(); ++s) EXPECT_FALSE(at::allclose(a.stages[s], b.stages[s])) << s;
}

TEST(ParallelStructureTest, PassesShareTheStageWeightsAndCostTheirFlops) {
  // By hand, BASIC blocks, stem 8, a 64x64 input (stages at 16, 8, 4, 2 pixels a side):
  //   stage 1 (8->8 at 16x16): 4 convs 8*8*9*256 = 589824; connection 8->8 at 16x16: 16384
  //   stage 2 (8->16, 16x16 -> 8x8): 16*8*9*64 + 3 * 16*16*9*64 + downsample 16*8*64 = 524288;
  //     connection 16->8 at 8x8: 8192
  //   stage 4 (32->64, 4x4 -> 2x2): 64*32*9*4 + 3 * 64*64*9*4 + 64*32*4 = 524288; connection 8192
  // Parallel code [1, 2, 0, 1] adds (589824 + 16384) + 2 * (524288 + 8192) + (524288 + 8192)
  // multiply-adds, and only the connections' parameters: conv 8*8 + BN 2*8, 16*8 + 2*8, 64*32 + 2*32.
  auto serial = BuildBackbone(TinyBody("11-21-21-21"));
  auto parallel = BuildBackbone(TinyBody("11-21-21-21", {1, 2, 0, 1}));
  EXPECT_EQ(CountParameters(*parallel) - CountParameters(*serial), (64 + 16) + (128 + 16) + (2048 + 64));
  const at::Tensor image = at::zeros({1, 3, 64, 64});
  serial->eval();
  parallel->eval();
  const double serial_flops = CountMultiplyAdds([&] { serial->Forward(image); });
  const double parallel_flops = CountMultiplyAdds([&] { parallel->Forward(image); });
  EXPECT_EQ(parallel_flops - serial_flops, (589824 + 16384) + 2 * (524288 + 8192) + (524288 + 8192));
}

// Momentum 1: after one training batch, every running statistic is that batch's.
void SetMomentumOne(torch::nn::Module& m) {
  for (auto& module : m.modules()) {
    if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) bn->options.momentum(1.0);
  }
}

TEST(ParallelStructureTest, EachPassIsEvaluatedWithTheStatisticsOfItsOwnInputs) {
  // Stage 2 runs three times (two passes and the trunk) on three different inputs once the
  // connection is open. Trained on one batch with momentum 1 and evaluated on the same batch,
  // statistics per pass reproduce training's output (up to the unbiased variance's factor
  // n / (n - 1), n = 2 * 16 * 16, compounded over the layers); shared ones hold only the
  // trunk's, the stage's last run (and the connection's, its last pass's).
  torch::manual_seed(3);
  SerialBackboneOptions per_pass = TinyBody("11-21-21-21", {0, 2, 0, 0}), shared = per_pass;
  shared.set_pass_statistics(SHARED);
  auto a = BuildBackbone(per_pass), b = BuildBackbone(shared);
  CopyShared(*a, *b);
  const at::Tensor images = at::rand({2, 3, 128, 128});
  for (auto* net : {a.get(), b.get()}) {
    torch::NoGradGuard no_grad;
    net->named_parameters()["connect2.1.weight"].fill_(1);
    SetMomentumOne(*net);
  }
  std::vector<double> errors;
  for (auto* net : {a.get(), b.get()}) {
    torch::NoGradGuard no_grad;
    net->train(true);
    const at::Tensor trained = net->Forward(images).stages[1];
    net->eval();
    const at::Tensor evaluated = net->Forward(images).stages[1];
    errors.push_back(((evaluated - trained).abs().max() / trained.abs().max()).item<double>());
  }
  EXPECT_LT(errors[0], 0.03);
  EXPECT_GT(errors[1], 0.2);
  // Each pass counted one batch in its own buffers, and the trunk one in the layer's.
  const auto buffers = a->named_buffers();
  for (const char* name : {"layer2.0.bn1.num_batches_tracked", "layer2.0.bn1.num_batches_tracked_pass1",
                           "layer2.1.bn2.num_batches_tracked_pass2"}) {
    ASSERT_NE(buffers.find(name), nullptr) << name;
    EXPECT_EQ(buffers[name].item<int64_t>(), 1) << name;
  }
  EXPECT_NE(buffers.find("layer2.0.downsample.1.running_var_pass2"), nullptr);
  EXPECT_EQ(buffers.find("layer2.0.bn1.running_mean_pass3"), nullptr);
  EXPECT_EQ(buffers.find("layer1.0.bn1.running_mean_pass1"), nullptr);  // K = 0: one set
  EXPECT_EQ(buffers["connect2.1.num_batches_tracked_pass1"].item<int64_t>(), 1);
  EXPECT_EQ(buffers.find("connect2.1.running_mean_pass2"), nullptr);
  EXPECT_EQ(b->named_buffers().find("layer2.0.bn1.running_mean_pass1"), nullptr);
  EXPECT_EQ(b->named_buffers()["layer2.0.bn1.num_batches_tracked"].item<int64_t>(), 3);
}

TEST(ParallelStructureTest, AStateWithOneSetOfStatisticsPerLayerLoadsIntoEveryPass) {
  SerialBackboneOptions per_pass = TinyBody("11-21-21-21", {1, 2, 0, 1}), shared = per_pass;
  shared.set_pass_statistics(SHARED);
  auto a = BuildBackbone(per_pass), b = BuildBackbone(shared);
  Randomize(*b);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : b->named_parameters()) {
      if (item.key().rfind("connect", 0) == 0) item.value().uniform_(0.5, 1.5);
    }
  }
  const LoadReport report = LoadStateDict(*a, GetStateDict(*b));
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty()) << report.Summary();
  a->eval();
  b->eval();
  const at::Tensor images = at::rand({2, 3, 64, 64});
  const BackboneFeatures x = a->Forward(images), y = b->Forward(images);
  for (size_t s = 0; s < x.stages.size(); ++s) EXPECT_TRUE(at::equal(x.stages[s], y.stages[s])) << s;
}

TEST(ParallelStructureTest, ConnectionsTrainEvenWithFrozenBatchNormAndStages) {
  SerialBackboneOptions body = TinyBody("11-21-21-21", {0, 1, 0, 0});
  body.set_norm(FROZEN_BATCH_NORM);
  body.set_trainable_stages(0);
  auto backbone = BuildBackbone(body);
  for (const auto& item : backbone->named_parameters()) {
    EXPECT_EQ(item.value().requires_grad(), item.key().rfind("connect2.", 0) == 0) << item.key();
  }
  SerialBackboneOptions bad = TinyBody("11-21-21-21", {0, 9, 0, 0});
  google::protobuf::Any any;
  any.PackFrom(bad);
  EXPECT_THAT(BackboneRegistry().Create("SerialBackbone", any).status().message(),
              HasSubstr("parallel code values must be in 0..8, got 9"));
}

TEST(ReignitionBackboneTest, TheClassifierTrainsWhatTheDetectorFroze) {
  SerialBackboneOptions frozen = TinyBody("11-21-21-21", {0, 1, 0, 0});
  frozen.set_norm(FROZEN_BATCH_NORM);
  frozen.set_trainable_stages(1);
  SerialBackboneOptions trainable;
  ASSERT_TRUE(FullyTrainableBackbone(Plugin("SerialBackbone", frozen)).options().UnpackTo(&trainable));
  EXPECT_EQ(trainable.norm(), BATCH_NORM);
  EXPECT_FALSE(trainable.has_trainable_stages());
  EXPECT_EQ(trainable.code(), "11-21-21-21");
  EXPECT_EQ(trainable.parallel_code_size(), 4);
  for (const auto& item : BuildBackbone(trainable)->named_parameters()) EXPECT_TRUE(item.value().requires_grad());
}

TEST(CostTest, TrainingStepMemoryCountsWeightsAndWhatTheStepKeeps) {
  {
    PeakMemoryMeter meter(c10::kCPU);
    { const at::Tensor big = at::empty({1 << 20}); }  // 4 MiB, freed at once
    const at::Tensor small = at::empty({1 << 10});
    EXPECT_GE(meter.PeakBytes(), 4 << 20);
    EXPECT_LT(meter.PeakBytes(), 5 << 20);
  }
  SerialClassificationNetOptions o;
  *o.mutable_backbone() = Plugin("SerialBackbone", TinyBody("11-21-21-21"));
  o.set_num_classes(10);
  auto model = Build(Plugin("SerialClassificationNet", o));
  const double weights = 4.0 * CountParameters(*model);
  const StateDict before = GetStateDict(*model);
  const double at32 = TrainingStepMemoryBytes(*model, 32, c10::kCPU);
  const double at64 = TrainingStepMemoryBytes(*model, 64, c10::kCPU);
  // The weights, their gradients, and the activations (the stem's alone: 2 x 8 x 16 x 16 floats
  // at 32 pixels, four times as many at 64).
  EXPECT_GT(at32, 2 * weights + 16e3);
  EXPECT_GT(at64, at32 + 48e3);
  for (const auto& [name, t] : GetStateDict(*model)) EXPECT_TRUE(at::equal(t, before.at(name))) << name;
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
  // Gradients left by training change neither the count nor themselves.
  for (auto& p : model->parameters()) p.mutable_grad() = at::full_like(p, 0.5);
  EXPECT_EQ(TrainingStepMemoryBytes(*model, 32, c10::kCPU), at32);
  for (const auto& p : model->parameters()) EXPECT_TRUE(at::equal(p.grad(), at::full_like(p, 0.5)));
}

DetectorOutput Detect(Model& m, const std::vector<at::Tensor>& images) {
  m.eval();
  torch::NoGradGuard no_grad;
  return dynamic_cast<Detector&>(m).Forward(images);
}

void ExpectSameDetections(const DetectorOutput& a, const DetectorOutput& b) {
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    ASSERT_EQ(a.detections[i].boxes.sizes(), b.detections[i].boxes.sizes());
    EXPECT_GT(a.detections[i].boxes.size(0), 0);
    EXPECT_LT((a.detections[i].boxes - b.detections[i].boxes).abs().max().item<double>(), 1e-4);
    EXPECT_LT((a.detections[i].scores - b.detections[i].scores).abs().max().item<double>(), 1e-5);
    EXPECT_TRUE(at::equal(a.detections[i].labels, b.detections[i].labels));
  }
}

class InheritanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(3);
    parent_desc_ = Plugin("FasterRCNN", Tiny("11-21-21-21"));
    parent_ = Build(parent_desc_);
    Randomize(*parent_);
    images_ = {at::rand({3, 96, 96}), at::rand({3, 80, 96})};
  }
  PluginConfig parent_desc_;
  std::shared_ptr<Model> parent_;
  std::vector<at::Tensor> images_;
};

TEST_F(InheritanceTest, ExpandedChildComputesWhatItsParentComputes) {
  // A new last block of stage 2 (global index 4).
  const PluginConfig child_desc = Plugin("FasterRCNN", Tiny("11-211-21-21"));
  auto child = Build(child_desc);
  auto report = InheritWeights(GetStateDict(*parent_), parent_desc_, child_desc, {ExpandMutation(4)}, *child);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->reshaped.empty()) << report->Summary();
  EXPECT_THAT(report->fresh, ::testing::Each(HasSubstr("backbone.body.layer2.2.")));
  ExpectSameDetections(Detect(*parent_, images_), Detect(*child, images_));
}

TEST_F(InheritanceTest, UnknownOrOutOfRangeMutationsAreErrors) {
  const PluginConfig child_desc = Plugin("FasterRCNN", Tiny("11-211-21-21"));
  auto child = Build(child_desc);
  const StateDict parent_state = GetStateDict(*parent_);
  auto report = InheritWeights(parent_state, parent_desc_, child_desc, {Mutation()}, *child);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("a mutation of no known kind"));
  report = InheritWeights(parent_state, parent_desc_, child_desc, {ExpandMutation(99)}, *child);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("mutation 'expand:99' is out of range"));
}

TEST_F(InheritanceTest, ParallelCandidateStartsAsItsSerialParent) {
  const PluginConfig child_desc = Plugin("FasterRCNN", Tiny("11-21-21-21", {1, 2, 0, 1}));
  auto child = Build(child_desc);
  auto report =
      InheritWeights(GetStateDict(*parent_), parent_desc_, child_desc, {ParallelMutation({1, 2, 0, 1})}, *child);
  ASSERT_TRUE(report.ok()) << report.status();
  // Only the connections are new: the passes share the stages' (inherited) weights.
  EXPECT_FALSE(report->fresh.empty());
  for (const std::string& name : report->fresh) EXPECT_THAT(name, HasSubstr(".connect")) << report->Summary();
  // Each pass's BatchNorm statistics start from its layer's: the parent's in the stages, the new
  // connection's own in the connections.
  const StateDict parent_state = GetStateDict(*parent_), child_state = GetStateDict(*child);
  int passes = 0;
  for (const auto& [name, t] : child_state) {
    const size_t at = name.find("_pass");
    if (at == std::string::npos) continue;
    ++passes;
    const StateDict& source = name.find(".connect") != std::string::npos ? child_state : parent_state;
    EXPECT_TRUE(at::equal(t, source.at(name.substr(0, at)))) << name;
  }
  EXPECT_GT(passes, 0);
  ExpectSameDetections(Detect(*parent_, images_), Detect(*child, images_));
  // [0, 0, 0, 0] is exactly the serial network: every tensor inherited, none new.
  const PluginConfig plain_desc = Plugin("FasterRCNN", Tiny("11-21-21-21", {0, 0, 0, 0}));
  auto plain = Build(plain_desc);
  auto plain_report = InheritWeights(GetStateDict(*parent_), parent_desc_, plain_desc, {}, *plain);
  EXPECT_TRUE(plain_report->fresh.empty() && plain_report->reshaped.empty()) << plain_report->Summary();
  EXPECT_EQ(OurLayout(*plain), OurLayout(*parent_));
}

TEST_F(InheritanceTest, SwapAndAddStageChildrenLoadEveryTensorThatFits) {
  for (const auto& [code, mutation] :
       std::vector<std::pair<std::string, Mutation>>{{"12-11-21-21", SwapWidthMutation(2, 1)},
                                                     {"1-121-21-21", SwapStageMutation(1, 1, 2)},
                                                     {"11-21-21-21-1", AddStageMutation()}}) {
    SCOPED_TRACE(code);
    const PluginConfig child_desc = Plugin("FasterRCNN", Tiny(code));
    auto child = Build(child_desc);
    const StateDict parent_state = GetStateDict(*parent_);
    auto report = InheritWeights(parent_state, parent_desc_, child_desc, {mutation}, *child);
    ASSERT_TRUE(report.ok()) << report.status();
    // Swaps keep every block's global index, and add-stage appends a new block: child block g
    // starts from parent block g where the parent has one, copied where the shapes agree and
    // on their overlap where a width changed.
    const std::vector<std::string> parent_blocks = Blocks("11-21-21-21"), child_blocks = Blocks(code);
    const StateDict child_state = GetStateDict(*child);
    int64_t compared = 0;
    for (size_t g = 0; g < child_blocks.size(); ++g) {
      const std::string prefix = "backbone.body." + child_blocks[g] + ".";
      for (const auto& [name, t] : child_state) {
        if (name.rfind(prefix, 0) != 0) continue;
        if (g >= parent_blocks.size()) {
          EXPECT_THAT(report->fresh, ::testing::Contains(name));
          continue;
        }
        const auto source = parent_state.find("backbone.body." + parent_blocks[g] + "." + name.substr(prefix.size()));
        if (source == parent_state.end()) continue;  // e.g. a downsample the parent block lacks
        at::Tensor ours = t, theirs = source->second;
        for (int64_t d = 0; d < t.dim(); ++d) {
          const int64_t n = std::min(ours.size(d), theirs.size(d));
          ours = ours.narrow(d, 0, n);
          theirs = theirs.narrow(d, 0, n);
        }
        EXPECT_TRUE(at::equal(ours, theirs)) << name << " from " << source->first;
        ++compared;
      }
    }
    EXPECT_GT(compared, 40);
    // Outside the body, every tensor of the same name and shape was copied.
    for (const auto& [name, t] : child_state) {
      auto it = parent_state.find(name);
      if (it != parent_state.end() && it->second.sizes() == t.sizes() && name.find("body") == std::string::npos) {
        EXPECT_TRUE(at::equal(t, it->second)) << name;
      }
    }
    EXPECT_GT(report->inherited.size(), child_state.size() / 2) << report->Summary();
  }
}

// Two generations of edits at once (equal_training): the grandchild starts from the
// grandparent's weights through both edits, computing what the grandparent computes.
TEST_F(InheritanceTest, ChainedEditsInheritAcrossGenerations) {
  const PluginConfig child_desc = Plugin("FasterRCNN", Tiny("111-211-21-21"));
  auto child = Build(child_desc);
  auto report =
      InheritWeights(GetStateDict(*parent_), parent_desc_, child_desc, {ExpandMutation(4), ExpandMutation(1)}, *child);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->reshaped.empty()) << report->Summary();
  ASSERT_FALSE(report->fresh.empty());
  for (const std::string& name : report->fresh) {
    EXPECT_THAT(name, ::testing::AnyOf(HasSubstr("layer1.1."), HasSubstr("layer2.2."))) << name;
  }
  ExpectSameDetections(Detect(*parent_, images_), Detect(*child, images_));
}

// A network whose edits from the weights' network are not known (a random search's code
// starting from the seed's weights): every tensor that fits by name is copied, the rest is new.
TEST_F(InheritanceTest, WithoutEditsTensorsMatchByName) {
  const PluginConfig child_desc = Plugin("FasterRCNN", Tiny("111-21-2111-21"));
  auto child = Build(child_desc);
  const StateDict parent_state = GetStateDict(*parent_);
  auto report = InheritWeights(parent_state, parent_desc_, child_desc, {}, *child);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->reshaped.empty()) << report->Summary();
  ASSERT_FALSE(report->fresh.empty());
  for (const std::string& name : report->fresh) {
    EXPECT_THAT(name, ::testing::AnyOf(HasSubstr("layer1.2."), HasSubstr("layer3.2."), HasSubstr("layer3.3.")));
  }
  for (const std::string& name : report->inherited) {
    EXPECT_TRUE(at::equal(GetStateDict(*child).at(name), parent_state.at(name))) << name;
  }
  EXPECT_EQ(report->inherited.size(), parent_state.size());
}

TEST_F(InheritanceTest, ClassifierAndDetectorShareBackboneWeights) {
  SerialClassificationNetOptions c;
  FasterRCNNOptions d;
  parent_desc_.options().UnpackTo(&d);
  *c.mutable_backbone() = d.backbone();
  const PluginConfig classifier_desc = Plugin("SerialClassificationNet", c);
  auto classifier = Build(classifier_desc);
  auto report = InheritWeights(GetStateDict(*parent_), parent_desc_, classifier_desc, {}, *classifier);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->fresh, (std::vector<std::string>{"fc.bias", "fc.weight"}));
  EXPECT_TRUE(at::equal(GetStateDict(*classifier).at("layer3.1.conv2.weight"),
                        GetStateDict(*parent_).at("backbone.body.layer3.1.conv2.weight")));
}

}  // namespace
}  // namespace spnas
