// SpNasS mutations and proposals, Pareto fronts and limits, SpNasP's 1/FLOPs sampling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "spnas/core/dotted_keys.h"
#include "spnas/core/objectives.h"
#include "spnas/models/backbones/serial_backbone.h"
#include "spnas/models/inheritance.h"
#include "spnas/models/model_options.pb.h"
#include "spnas/models/searchable.h"
#include "spnas/search/candidate_cost.h"
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
  o.add_min_size(64);
  o.set_max_size(64);
  o.mutable_backbone()->set_type("SerialBackbone");
  o.mutable_backbone()->mutable_options()->PackFrom(b);
  // Small heads: the costs (memory, latency) of these detectors are measured in the tests.
  FPNOptions fpn;
  fpn.set_out_channels(16);
  o.mutable_neck()->set_type("FPN");
  o.mutable_neck()->mutable_options()->PackFrom(fpn);
  TwoMLPHeadOptions head;
  head.set_representation_size(32);
  o.mutable_box_head()->set_type("TwoMLPHead");
  o.mutable_box_head()->mutable_options()->PackFrom(head);
  o.set_num_classes(5);
  o.set_rpn_pre_nms_top_n_train(100);
  o.set_rpn_post_nms_top_n_train(50);
  o.set_rpn_pre_nms_top_n_test(50);
  o.set_rpn_post_nms_top_n_test(30);
  o.set_box_batch_size_per_image(32);
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
  context.input_labels = {"fine_tune/0"};
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

// A distributed run: while the seed's own trial trains, candidates are mutants of the seed
// input, from its weights, and never the seed or another running candidate again.
TEST(SpNasSTest, WhileTheSeedTrainsElsewhereItsMutantsAreProposed) {
  SpNasSOptions o;
  o.set_num_mutate(1);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  std::mt19937_64 rng(3);
  std::vector<Candidate> running = {algorithm->Propose({}, rng).value().value()};
  for (int i = 0; i < 10; ++i) {
    algorithm->SetRunning(running);
    auto c = algorithm->Propose({}, rng).value();
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->parent_is_input);
    EXPECT_EQ(c->parent, 0);
    EXPECT_EQ(c->mutations.size(), 1u);
    for (const Candidate& r : running) {
      EXPECT_NE(c->hyperparameters.at("network.backbone.code"), r.hyperparameters.at("network.backbone.code"));
    }
    running.push_back(*c);
  }
  // Nothing running and nothing finished: the seed again (its trial was lost).
  algorithm->SetRunning({});
  EXPECT_TRUE(algorithm->Propose({}, rng).value()->mutations.empty());
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
  // The memory of a training step, measured before training.
  o.mutable_limits()->set_max_params(0);
  o.mutable_limits()->set_max_memory_mb(0.01);
  algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  EXPECT_FALSE(algorithm->Propose(history, rng).value().has_value());
  o.mutable_limits()->set_max_memory_mb(1e6);
  algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  EXPECT_TRUE(algorithm->Propose(history, rng).value().has_value());
}

// A HyperparameterSpace of one key over the given values.
std::unique_ptr<SearchSpace> Codes(const std::string& key, const std::vector<std::string>& codes) {
  HyperparameterSpaceOptions o;
  Hyperparameter* h = o.add_hyperparameter();
  h->set_key(key);
  for (const std::string& code : codes) h->add_range(code);
  google::protobuf::Any any;
  any.PackFrom(o);
  return SearchSpaceRegistry().Create("HyperparameterSpace", any).value();
}

// The codes RandomSearch proposes, in order, until it ends (each proposal becomes a trial).
std::vector<std::string> RandomSearchCodes(const RandomSearchOptions& o, const std::vector<std::string>& space_codes) {
  google::protobuf::Any any;
  any.PackFrom(o);
  auto algorithm = SearchAlgorithmRegistry().Create("RandomSearch", any).value();
  const auto space = Codes("network.backbone.code", space_codes);
  SearchContext context;
  context.base_model = Detector("11-21-21-21");
  context.space = space.get();
  EXPECT_TRUE(algorithm->Init(context).ok());
  std::mt19937_64 rng(7);
  std::vector<Trial> history;
  std::vector<std::string> codes;
  while (true) {
    auto c = algorithm->Propose(history, rng).value();
    if (!c.has_value()) break;
    const std::string code = c->hyperparameters.at("network.backbone.code");
    codes.push_back(code);
    history.push_back(T(static_cast<int>(history.size()), M(10, 10), code));
  }
  return codes;
}

TEST(RandomSearchTest, PointsOverALimitAreRedrawnBeforeTraining) {
  const double seed_params = CandidateCosts(Detector("11-21-21-21"), 64, CostsWanted{}).value().at("params");
  // Two codes no bigger than the seed (itself, and one with a narrower last stage), two bigger.
  const std::vector<std::string> space = {"11-21-21-21", "11-21-21-12", "11-211-211-211", "11-21-21-211"};
  ASSERT_LT(CandidateCosts(Detector("11-21-21-12"), 64, CostsWanted{}).value().at("params"), seed_params);
  RandomSearchOptions o;
  o.set_max_sample(10);
  o.set_max_redraws(50);
  o.set_cost_input_size(64);
  std::vector<std::string> codes = RandomSearchCodes(o, space);
  EXPECT_EQ(std::set<std::string>(codes.begin(), codes.end()), std::set<std::string>(space.begin(), space.end()));
  o.mutable_limits()->set_max_params(seed_params);
  codes = RandomSearchCodes(o, space);
  EXPECT_EQ(std::set<std::string>(codes.begin(), codes.end()), (std::set<std::string>{"11-21-21-21", "11-21-21-12"}));
  EXPECT_EQ(codes.size(), 2u);  // each once, then the search ends: every other point is over the limit
  o.mutable_limits()->set_max_params(seed_params - 1);
  EXPECT_EQ(RandomSearchCodes(o, space), (std::vector<std::string>{"11-21-21-12"}));
}

TEST(RecordLabelTest, ParentLabelsNameAStepAndAnId) {
  EXPECT_EQ(ParseRecordLabel("serial/12"), std::make_optional(std::make_pair(std::string("serial"), 12)));
  EXPECT_EQ(ParseRecordLabel("out/serial/3"), std::make_optional(std::make_pair(std::string("out/serial"), 3)));
  EXPECT_EQ(ParseRecordLabel("serial/999999999"), std::make_optional(std::make_pair(std::string("serial"), 999999999)));
  for (const char* other : {"", "serial", "serial/", "/3", "/weights/model.pth", "serial/3a", "serial/99999999999"}) {
    EXPECT_FALSE(ParseRecordLabel(other).has_value()) << other;
  }
}

// Chi-square statistic of `counts` against `expected` probabilities.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& expected) {
  int n = 0;
  for (int c : counts) n += c;
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = n * expected[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

Trial Finished(int id, double map, double params, const std::string& code, int reignitions = 0) {
  Trial t = T(id, M(map, params), code);
  t.desc = Detector(code);
  FasterRCNNOptions o;
  t.desc.options().UnpackTo(&o);
  o.set_reignitions(reignitions);
  t.desc.mutable_options()->PackFrom(o);
  t.record.set_parent("serial/0");
  return t;
}

// Parents are drawn uniformly from the top max_optimal of the front, never from below it.
// Chi-square over 600 proposals, 2 degrees of freedom (13.82: the 0.1% critical value).
TEST(SpNasSTest, ParentsAreDrawnFromTheTopMaxOptimalOfTheFront) {
  SpNasSOptions o;
  o.set_max_sample(1000);
  o.set_max_optimal(3);
  o.set_num_mutate(1);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  // Front, best mAP first: 4, 3, 2, 1; 0 and 5 are dominated.
  const std::vector<Trial> history = {SeedTrial(),
                                      Finished(1, 25, 90, "11-211-21-21"),
                                      Finished(2, 30, 120, "11-21-211-21"),
                                      Finished(3, 35, 150, "11-21-21-211"),
                                      Finished(4, 40, 200, "111-21-21-21"),
                                      Finished(5, 10, 300, "11-21-21-2111")};
  std::mt19937_64 rng(21);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 600; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE(c->parent >= 2 && c->parent <= 4) << c->parent;
    ++counts[4 - c->parent];
  }
  EXPECT_LT(ChiSquare(counts, {1.0 / 3, 1.0 / 3, 1.0 / 3}), 13.82) << counts[0] << " " << counts[1] << " " << counts[2];
}

// One operation per candidate: add-stage with add_stage_ratio, else expand with expend_ratio,
// else a swap. Chi-square over 3000 proposals, 2 degrees of freedom.
TEST(SpNasSTest, MutationKindsFollowTheirRatios) {
  SpNasSOptions o;
  o.set_max_sample(10000);
  o.set_num_mutate(1);
  o.set_add_stage_ratio(0.2f);
  o.set_expend_ratio(0.5f);
  o.set_max_stages(7);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  const std::vector<Trial> history = {SeedTrial()};
  std::mt19937_64 rng(22);
  std::vector<int> counts(3, 0);  // add stage, expand, swap
  for (int i = 0; i < 3000; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    ASSERT_EQ(c->mutations.size(), 1u);
    const Mutation& m = c->mutations[0];
    ++counts[m.has_add_stage() ? 0 : m.has_expand() ? 1 : 2];
  }
  EXPECT_LT(ChiSquare(counts, {0.2, 0.8 * 0.5, 0.8 * 0.5}), 13.82) << counts[0] << " " << counts[1] << " " << counts[2];
}

// The code with its global block `g` removed.
std::string WithoutBlock(const std::string& code, int g) {
  std::string out;
  int block = 0;
  for (char c : code) {
    if (c != '-' && block++ == g) continue;
    out += c;
  }
  return out;
}

TEST(SpNasSTest, MutationsChainAndEachIsRecordedAsApplied) {
  SpNasSOptions o;
  o.set_max_sample(1000);
  o.set_num_mutate(3);
  o.set_add_stage_ratio(0.1f);
  o.set_expend_ratio(0.5f);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  const std::vector<Trial> history = {SeedTrial()};
  std::mt19937_64 rng(23);
  int chains = 0;
  for (int i = 0; i < 200; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    const std::string code = c->hyperparameters.at("network.backbone.code");
    int added = 0;
    for (const Mutation& m : c->mutations) added += m.has_expand() || m.has_add_stage();
    EXPECT_EQ(Blocks(code), 8 + added) << code;
    chains += c->mutations.size() == 3;
  }
  EXPECT_GT(chains, 150);
  // An expand records where the new block is: removing it gives the parent back.
  for (const std::string parent : {"11-21-21-21", "111-2111-211111-211"}) {
    for (int i = 0; i < 200; ++i) {
      const auto m = ExpandCode(parent, rng);
      ASSERT_TRUE(m.has_value());
      EXPECT_EQ(WithoutBlock(m->code, m->mutation.expand().child_block()), parent) << m->code;
    }
  }
}

// equal_training: every candidate starts from its lineage's input record, through the edits
// of its whole lineage (its parent's recorded edits, then its own), whatever its generation.
TEST(SpNasSTest, EqualTrainingStartsEachCandidateFromItsLineagesInputThroughAllEdits) {
  SpNasSOptions o;
  o.set_max_sample(1000);
  o.set_max_optimal(1);
  o.set_num_mutate(1);
  o.set_equal_training(true);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  std::vector<Trial> history = {SeedTrial(), Finished(1, 25, 90, "11-211-21-21")};
  history[0].record.set_parent("fine_tune/0");
  history[1].record.set_parent("fine_tune/0");
  *history[1].record.add_mutations() = ExpandMutation(4);
  std::mt19937_64 rng(24);
  for (int i = 0; i < 50; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->parent, 0);
    EXPECT_TRUE(c->parent_is_input);
    ASSERT_EQ(c->mutations.size(), 2u);
    EXPECT_TRUE(c->mutations[0].has_expand() && c->mutations[0].expand().child_block() == 4);
    const std::string code = c->hyperparameters.at("network.backbone.code");
    EXPECT_EQ(Blocks(code), 9 + c->mutations[1].has_expand() + c->mutations[1].has_add_stage()) << code;
  }
  // A front member that did not start from an input record is an error, not a silent parent.
  history[1].record.set_parent("serial/0");
  auto wrong = algorithm->Propose(history, rng);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(), HasSubstr("trial 1's parent 'serial/0' is none of the step's input records"));
  // It needs input records, and excludes reignition.
  EXPECT_THAT(SpNasS(o)->Init(SearchContext()).message(), HasSubstr("this step has none (set models_folder)"));
  o.set_stall_candidates(3);
  google::protobuf::Any any;
  any.PackFrom(o);
  EXPECT_THAT(SearchAlgorithmRegistry().Create("SpNasS", any).status().message(),
              HasSubstr("equal_training and stall_candidates exclude each other"));
}

TEST(SpNasSTest, AStalledFrontIsReignitedUpToMaxReignitionsPerLineage) {
  SpNasSOptions o;
  o.set_max_sample(100);
  o.set_max_optimal(2);
  o.set_num_mutate(1);
  o.set_stall_candidates(2);
  o.set_max_reignitions(1);
  auto algorithm = SpNasS(o);
  ASSERT_TRUE(algorithm->Init(SeedContext()).ok());
  std::mt19937_64 rng(24);
  // 1 improves on the seed; 2 and 3 do not: the front has stalled for 2 candidates.
  std::vector<Trial> history = {SeedTrial(), Finished(1, 25, 90, "11-211-21-21"), Finished(2, 24, 95, "11-21-211-21")};
  auto c = algorithm->Propose(history, rng).value();
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->mutations.empty() || !c->mutations[0].has_reignition());  // one stalled candidate only
  history.push_back(Finished(3, 15, 200, "11-21-21-211"));
  c = algorithm->Propose(history, rng).value();
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->mutations.size(), 1u);
  EXPECT_TRUE(c->mutations[0].has_reignition());
  EXPECT_EQ(c->parent, 1);  // the front: trial 1 alone
  EXPECT_EQ(c->pretrain.type(), "ReignitionCallback");
  EXPECT_EQ(c->hyperparameters.at("network.backbone.code"), "11-211-21-21");

  // The reignited trial (its lineage now reignited once) tops the front; the round is over and
  // the search goes on from it with mutants.
  Trial reignited = Finished(4, 27, 90, "11-211-21-21", /*reignitions=*/1);
  reignited.record.set_parent("serial/1");
  *reignited.record.add_mutations() = ReignitionMutation();
  history.push_back(reignited);
  c = algorithm->Propose(history, rng).value();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->parent, 4);
  EXPECT_FALSE(c->mutations[0].has_reignition());
  // Stalled again: trial 4's lineage has had its max_reignitions (1); trial 1 is off the front.
  history.push_back(Finished(5, 20, 150, "11-21-21-21-1"));
  history.push_back(Finished(6, 21, 160, "111-21-21-21"));
  for (int i = 0; i < 20; ++i) {
    c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    EXPECT_FALSE(c->mutations[0].has_reignition());
  }
  // With a limit of 2 it is reignited once more.
  o.set_max_reignitions(2);
  auto twice = SpNasS(o);
  ASSERT_TRUE(twice->Init(SeedContext()).ok());
  c = twice->Propose(history, rng).value();
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->mutations[0].has_reignition());
  EXPECT_EQ(c->parent, 4);
}

std::unique_ptr<SearchAlgorithm> SpNasP(const SpNasPOptions& o) {
  google::protobuf::Any any;
  any.PackFrom(o);
  return SearchAlgorithmRegistry().Create("SpNasP", any).value();
}

// Three reignited backbones whose serial parents had mAP 30, 40 and 35 at 102, 101 and 100
// parameters (their own records carry the classifier's accuracy only): the front is 1, then 2.
SearchContext ReignitedInputs() {
  SearchContext context;
  const std::vector<std::string> codes = {"11-21-21-21", "11-211-21-21", "11-21-211-21"};
  for (int i = 0; i < 3; ++i) {
    Trial t = T(i, {{"reignition_accuracy", 70}, {"params", 102.0 - i}}, codes[i]);
    t.desc = Detector(codes[i]);
    context.inputs.push_back(t);
    context.input_metrics.push_back({{"mAP", std::vector<double>{30, 40, 35}[i]}, {"params", 102.0 - i}});
  }
  return context;
}

TEST(SpNasPTest, ParentsAreTheBestMaxOptimalInputsAndConfiguredCodesComeFirst) {
  SpNasPOptions o;
  o.set_max_sample(6);
  o.set_cost_input_size(64);
  o.set_stop_probability(0.5f);
  SearchContext context = ReignitedInputs();
  const auto space = Codes("network.backbone.parallel_code", {"[0, 1, 2, 1]"});
  context.space = space.get();
  auto algorithm = SpNasP(o);  // max_optimal 1: the best lineage only
  ASSERT_TRUE(algorithm->Init(context).ok());
  std::mt19937_64 rng(31);
  std::vector<Trial> history;
  std::vector<std::string> codes;
  for (int i = 0; i < 6; ++i) {
    auto c = algorithm->Propose(history, rng).value();
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->parent, 1);
    EXPECT_TRUE(c->parent_is_input);
    const std::string code = c->hyperparameters.at("network.backbone.parallel_code");
    EXPECT_EQ(GetByKey(c->model, "network.backbone.parallel_code").value(), code);
    codes.push_back(code);
    Trial t = T(i, M(30, 100), "11-211-21-21");
    (*t.record.mutable_hyperparameters())["network.backbone.parallel_code"] = code;
    history.push_back(t);
  }
  EXPECT_EQ(codes[0], "[0, 1, 2, 1]");  // the configured code first
  EXPECT_EQ(codes[1], "[0, 0, 0, 0]");  // then the serial network as the baseline
  EXPECT_EQ(std::set<std::string>(codes.begin(), codes.end()).size(), codes.size());

  o.set_max_optimal(2);
  algorithm = SpNasP(o);
  ASSERT_TRUE(algorithm->Init(context).ok());
  std::set<int> parents;
  for (int i = 0; i < 30; ++i) parents.insert(algorithm->Propose({}, rng).value()->parent);
  EXPECT_EQ(parents, (std::set<int>{1, 2}));  // never the weakest lineage

  const auto old_key = Codes("network.neck.code", {"[0, 1, 2, 1]"});
  context.space = old_key.get();
  EXPECT_THAT(SpNasP(o)->Init(context).message(), HasSubstr("got 'network.neck.code'"));
}

TEST(SpNasPTest, LatencyMemoryAndFlopsIncreaseLimitsRejectCandidatesBeforeTraining) {
  SpNasPOptions o;
  o.set_cost_input_size(64);
  o.set_max_redraws(3);
  o.mutable_limits()->set_max_memory_mb(0.01);  // no detector trains in 10 KB
  auto algorithm = SpNasP(o);
  ASSERT_TRUE(algorithm->Init(ReignitedInputs()).ok());
  std::mt19937_64 rng(32);
  EXPECT_FALSE(algorithm->Propose({}, rng).value().has_value());
  o.mutable_limits()->set_max_memory_mb(0);
  o.mutable_limits()->set_max_latency_ms(1e-6);
  algorithm = SpNasP(o);
  ASSERT_TRUE(algorithm->Init(ReignitedInputs()).ok());
  EXPECT_FALSE(algorithm->Propose({}, rng).value().has_value());
  o.mutable_limits()->set_max_latency_ms(1e6);
  algorithm = SpNasP(o);
  ASSERT_TRUE(algorithm->Init(ReignitedInputs()).ok());
  EXPECT_TRUE(algorithm->Propose({}, rng).value().has_value());
  // No FLOPs to add: the plain network alone is within the limit.
  o.set_max_flops_increase(1e-6f);
  algorithm = SpNasP(o);
  ASSERT_TRUE(algorithm->Init(ReignitedInputs()).ok());
  auto plain = algorithm->Propose({}, rng).value();
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->hyperparameters.at("network.backbone.parallel_code"), "[0, 0, 0, 0]");
  Trial t = T(0, M(30, 100), "11-211-21-21");
  (*t.record.mutable_hyperparameters())["network.backbone.parallel_code"] = "[0, 0, 0, 0]";
  EXPECT_FALSE(algorithm->Propose({t}, rng).value().has_value());
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
  sampler.pass_flops = {1, 1, 1, 1};
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

// A cheap stage (weight 1/1) and an expensive one (1/4) under a budget of 6: without
// fill_limits a code ends at the first pass that does not fit, and usually falls short; with
// it, the sampler keeps drawing among the stages that still fit and ends within 1 of the budget.
TEST(ParallelSamplingTest, FillLimitsDrawsOnUntilNoStageFits) {
  ParallelSampler sampler;
  sampler.pass_flops = {1, 4};
  sampler.stop_probability = 0;
  sampler.max_per_stage = 8;
  auto cost = [](const std::vector<int>& code) { return code[0] * 1 + code[1] * 4; };
  sampler.within_limits = [&](const std::vector<int>& code) { return cost(code) <= 6; };
  std::mt19937_64 rng(5);
  int short_of_budget = 0;
  for (int i = 0; i < 200; ++i) short_of_budget += cost(sampler.Sample({}, rng)) < 5;
  EXPECT_GT(short_of_budget, 20);
  sampler.fill_limits = true;
  for (int i = 0; i < 200; ++i) {
    const auto code = sampler.Sample({}, rng);
    EXPECT_GE(cost(code), 5) << code[0] << " " << code[1];
    EXPECT_LE(cost(code), 6);
  }
}

}  // namespace
}  // namespace spnas
