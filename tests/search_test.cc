// SpNasS mutations and proposals, Pareto fronts and limits, SpNasP's 1/FLOPs sampling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "spnas/core/dotted_keys.h"
#include "spnas/core/objectives.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/search/parallel_sampling.h"
#include "spnas/search/pareto.h"
#include "spnas/search/search_algorithm.h"
#include "spnas/search/serial_mutation.h"

namespace spnas {
namespace {

using ::testing::HasSubstr;

int Blocks(const std::string& code) {
  int n = 0;
  for (char c : code) n += c != '-';
  return n;
}

TEST(SerialMutationTest, ExpandAddsOneBlockAfterAStageStart) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; ++i) {
    auto m = ExpandCode("11-21-21-21", rng);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(Blocks(m->code), 9);
    EXPECT_EQ(SplitStages(m->code).size(), 4u);
    // Every stage still starts as before: strides and width changes stay put.
    const auto stages = SplitStages(m->code);
    EXPECT_EQ(std::string(1, stages[1][0]) + stages[2][0] + stages[3][0], "222");
    EXPECT_THAT(MutationText(m->mutation), ::testing::StartsWith("expand:"));
  }
}

TEST(SerialMutationTest, SwapsKeepTheBlocksAndNonEmptyStages) {
  std::mt19937_64 rng(2);
  std::set<std::string> seen;
  for (int i = 0; i < 300; ++i) {
    for (auto m : {SwapWidth("111-2111-211111-211", rng), SwapStage("111-2111-211111-211", rng)}) {
      ASSERT_TRUE(m.has_value());
      EXPECT_EQ(Blocks(m->code), 16);
      EXPECT_TRUE(CheckSerialCode(m->code).ok()) << m->code;
      seen.insert(m->code);
    }
  }
  EXPECT_TRUE(seen.count("111-1211-211111-211"));  // a '2' moved forward
  EXPECT_TRUE(seen.count("112-1111-211111-211"));  // a '2' moved back into stage 1
  EXPECT_TRUE(seen.count("11-12111-211111-211"));  // a boundary moved left
  EXPECT_TRUE(seen.count("1112-111-211111-211"));  // a boundary moved right
  EXPECT_FALSE(SwapStage("1-1-1-1", rng).has_value());
}

TEST(SerialMutationTest, AddStageIsReachableUpToMaxStages) {
  EXPECT_EQ(AddStage("11-21-21-21", 6)->code, "11-21-21-21-1");
  EXPECT_FALSE(AddStage("1-1-1-1-1-1", 6).has_value());
}

std::map<std::string, double> M(double map, double params) { return {{"mAP", map}, {"params", params}}; }

Trial T(int id, std::map<std::string, double> metrics, const std::string& code = "", TrialStatus status = FINISHED) {
  Trial t;
  t.record.set_id(id);
  t.record.set_status(status);
  for (const auto& [k, v] : metrics) (*t.record.mutable_metrics())[k] = v;
  if (!code.empty()) (*t.record.mutable_hyperparameters())["network.backbone.code"] = code;
  return t;
}

TEST(ParetoTest, FrontHoldsTheNonDominatedTrialsBestFirst) {
  auto objectives = ParseObjectives({"mAP", "params"}).value();
  std::vector<Trial> trials = {T(0, M(30, 100)), T(1, M(35, 120)),           T(2, M(25, 110)),   T(3, M(35, 90)),
                               T(4, M(40, 200)), T(5, M(99, 1), "", FAILED), T(6, {{"mAP", 50}})};
  EXPECT_EQ(ParetoFront(trials, objectives), (std::vector<int>{4, 3}));
  EXPECT_TRUE(Dominates(M(35, 90), M(30, 100), objectives));
  EXPECT_FALSE(Dominates(M(35, 90), M(35, 90), objectives));
  EXPECT_THAT(ParseObjectives({"mAP", "speed"}).status().message(),
              HasSubstr("objective 'speed' has no known direction"));
}

TEST(ObjectivesTest, EachMetricHasOneDirection) {
  EXPECT_EQ(MetricDirection("AP50").value(), Direction::kMaximize);
  EXPECT_EQ(MetricDirection("loss_box_reg").value(), Direction::kMinimize);
  EXPECT_THAT(MetricDirection("throughput", "monitor").status().message(),
              HasSubstr("monitor 'throughput' has no known direction"));
  ASSERT_TRUE(DeclareMetricDirection("throughput", Direction::kMaximize).ok());
  EXPECT_EQ(MetricDirection("throughput").value(), Direction::kMaximize);
  EXPECT_EQ(DeclareMetricDirection("throughput", Direction::kMinimize).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(DeclareMetricDirection("params", Direction::kMaximize).code(), StatusCode::kAlreadyExists);
}

TEST(ParetoTest, LimitsNameWhatIsOver) {
  ResourceLimits limits;
  limits.set_max_params(100);
  EXPECT_TRUE(CheckLimits({{"params", 100}}, limits).ok());
  EXPECT_EQ(CheckLimits({{"params", 101}}, limits).message(), "params 101 > 100");
}

PluginConfig Detector(const std::string& code) {
  FasterRCNNOptions o;
  SerialBackboneOptions b;
  b.set_code(code);
  b.set_block(BASIC);
  b.set_stem_width(8);
  o.mutable_backbone()->set_type("SerialBackbone");
  o.mutable_backbone()->mutable_options()->PackFrom(b);
  PluginConfig c;
  c.set_type("FasterRCNN");
  c.mutable_options()->PackFrom(o);
  return c;
}

// The seed 11-21-21-21 as an input record, and as the first finished trial of a search.
Trial SeedTrial() {
  Trial t = T(0, M(20, 100), "11-21-21-21");
  t.desc = Detector("11-21-21-21");
  return t;
}

SearchContext SeedContext() {
  SearchContext context;
  context.inputs = {SeedTrial()};
  return context;
}

std::unique_ptr<SearchAlgorithm> SpNasS(const SpNasSOptions& o) {
  google::protobuf::Any any;
  any.PackFrom(o);
  return SearchAlgorithmRegistry().Create("SpNasS", any).value();
}

TEST(SpNasSTest, SeedFirstThenMutantsOfTheFrontsTop) {
  SpNasSOptions o;
  o.set_max_sample(50);
  o.set_max_optimal(1);
  o.set_num_mutate(1);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  std::mt19937_64 rng(1);
  auto first = algorithm->Propose({}, rng).value();
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->parent_is_input);
  EXPECT_TRUE(first->mutations.empty());
  EXPECT_EQ(first->hyperparameters.at("network.backbone.code"), "11-21-21-21");

  // History: the seed and a better child; with max_optimal 1 every parent is the best one.
  std::vector<Trial> history = {SeedTrial(), T(1, M(25, 90), "11-211-21-21")};
  history[1].desc = Detector("11-211-21-21");
  std::set<std::string> codes;
  for (int i = 0; i < 40; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->parent, 1);
    EXPECT_FALSE(c->parent_is_input);
    const std::string code = c->hyperparameters.at("network.backbone.code");
    EXPECT_NE(code, "11-21-21-21");  // already evaluated: redrawn
    EXPECT_NE(code, "11-211-21-21");
    EXPECT_EQ(GetByKey(c->model, "network.backbone.code").value(), code);
    EXPECT_EQ(c->mutations.size(), 1u);
    codes.insert(code);
  }
  EXPECT_GT(codes.size(), 5u);
  EXPECT_FALSE(algorithm->Propose(std::vector<Trial>(50, history[0]), rng).value().has_value());  // budget spent
}

TEST(SpNasSTest, AddStageIsReachable) {
  SpNasSOptions o;
  o.set_num_mutate(1);
  o.set_add_stage_ratio(1.0f);
  o.set_max_stages(6);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  const std::vector<Trial> history = {SeedTrial()};
  std::mt19937_64 rng(4);
  auto c = algorithm->Propose(history, rng).value();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->hyperparameters.at("network.backbone.code"), "11-21-21-21-1");
  ASSERT_EQ(c->mutations.size(), 1u);
  EXPECT_EQ(MutationText(c->mutations[0]), "add_stage");
}

TEST(SpNasSTest, CandidatesOverALimitAreRejectedBeforeTraining) {
  SpNasSOptions o;
  o.set_num_mutate(1);
  o.set_expend_ratio(1.0f);
  o.set_cost_input_size(64);
  o.mutable_limits()->set_max_params(1);  // nothing fits
  o.set_max_redraws(5);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  const std::vector<Trial> history = {SeedTrial()};
  std::mt19937_64 rng(5);
  EXPECT_FALSE(algorithm->Propose(history, rng).value().has_value());
}

// SpNasP: P(stage l) ∝ 1 / FLOPs_l. A chi-square test over 20,000 draws (3 degrees of freedom;
// 16.27 is the 0.1% critical value), with a fixed seed so the test is deterministic.
TEST(ParallelSamplingTest, StagesAreDrawnInverselyToTheirFlops) {
  const std::vector<double> flops = {1e6, 2e6, 4e6, 8e6};
  const std::vector<bool> allowed(4, true);
  std::mt19937_64 rng(11);
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[DrawStage(flops, allowed, rng)];
  const double weights[4] = {8, 4, 2, 1};
  double chi2 = 0;
  for (int l = 0; l < 4; ++l) {
    const double expected = n * weights[l] / 15;
    chi2 += (counts[l] - expected) * (counts[l] - expected) / expected;
  }
  EXPECT_LT(chi2, 16.27) << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3];
  EXPECT_EQ(DrawStage(flops, {false, false, false, false}, rng), -1);
}

TEST(ParallelSamplingTest, SamplerStopsBeforeBreakingTheLimits) {
  ParallelSampler sampler;
  sampler.subnet_flops = {1, 1, 1, 1};
  sampler.stop_probability = 0;
  sampler.max_per_stage = 5;
  sampler.within_limits = [](const std::vector<int>& code) {
    int total = 0;
    for (int k : code) total += k;
    return total <= 3;
  };
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) {
    const auto code = sampler.Sample({}, rng);
    EXPECT_EQ(code[0] + code[1] + code[2] + code[3], 3);
  }
  sampler.within_limits = nullptr;
  const auto full = sampler.Sample({}, rng);
  EXPECT_EQ(full, (std::vector<int>{5, 5, 5, 5}));  // max_per_stage caps every stage
}

}  // namespace
}  // namespace spnas
