#include "spnas/core/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "spnas/pipeline/pipe_step_options.pb.h"
#include "spnas/pipeline/pipeline.h"
#include "spnas/search/search_options.pb.h"
#include "tests/test_plugins.pb.h"

// The raw-string configs below carry the line:column positions the tests assert.
// clang-format off
namespace spnas {
namespace {

using ::testing::HasSubstr;

// A valid two-step pipeline: a random search, then training of its selection.
constexpr char kGood[] = R"pb(
general { local_base_path: "/tmp/spnas_config_test" seed: 3 }
shared {
  name: "trainer"
  plugin {
    type: "AnalyticTrainer"
    options { [type.googleapis.com/spnas.testing.AnalyticTrainerOptions] { best_hidden: 24 fail_hidden: 7 } }
  }
}
step {
  name: "search"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm {
    type: "RandomSearch"
    options { [type.googleapis.com/spnas.RandomSearchOptions] { max_sample: 5 } }
  }
  search_space {
    type: "HyperparameterSpace"
    options {
      [type.googleapis.com/spnas.HyperparameterSpaceOptions] {
        hyperparameter { key: "network.hidden" type: INT range: "4" range: "40" }
      }
    }
  }
  model {
    type: "TinyMlp"
    options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 8 } }
  }
  trainer { ref: "shared.trainer" }
  pretrained_model_file: "{local_base_path}/nothing/../start.pth"
}
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  trainer {
    ref: "search.trainer"
    options { [type.googleapis.com/spnas.testing.AnalyticTrainerOptions] { best_hidden: 30 } }
  }
  models_folder: "search"
}
)pb";

struct Parsed {
  StatusOr<LoadedConfig> config;
  ConfigErrors errors;
};

std::unique_ptr<Parsed> Parse(const std::string& text, const std::string& base = "") {
  auto parsed = std::make_unique<Parsed>(Parsed{Status(StatusCode::kInternal, "unset"), {}});
  ConfigLoadOptions options;
  options.local_base_path = base;
  parsed->config = ParseConfig(text, "pipe.textproto", options, &parsed->errors);
  if (parsed->config.ok()) ValidatePipeline(*parsed->config, &parsed->errors);
  return parsed;
}

// A fresh folder under the test's temporary directory.
std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(root ? root : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string AllErrors(const Parsed& parsed) { return parsed.errors.ToStatus().message(); }

TEST(ConfigTest, GoodConfigResolvesRefsAndPaths) {
  const std::string base = TempDir("good");
  std::ofstream(base + "/start.pth") << "x";
  auto parsed = Parse(kGood, base);
  ASSERT_TRUE(parsed->errors.empty()) << AllErrors(*parsed);
  const PipelineConfig& config = parsed->config->config();
  // shared.trainer copied into step 1; step 2 overrides one field and keeps the other.
  testing::AnalyticTrainerOptions first, second;
  ASSERT_TRUE(config.step(0).trainer().options().UnpackTo(&first));
  ASSERT_TRUE(config.step(1).trainer().options().UnpackTo(&second));
  EXPECT_EQ(config.step(0).trainer().type(), "AnalyticTrainer");
  EXPECT_EQ(config.step(1).trainer().type(), "AnalyticTrainer");
  EXPECT_EQ(first.best_hidden(), 24);
  EXPECT_EQ(second.best_hidden(), 30);
  EXPECT_EQ(second.fail_hidden(), 7);
  EXPECT_TRUE(config.step(1).trainer().ref().empty());
  EXPECT_EQ(config.step(0).pretrained_model_file(), base + "/start.pth");
  EXPECT_EQ(parsed->config->InputDir(config.step(1)), base + "/output/search");
  // The resolved text parses back to the same config.
  PipelineConfig reparsed;
  std::string text = parsed->config->ResolvedText();
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &reparsed));
  EXPECT_EQ(reparsed.DebugString(), config.DebugString());
  EXPECT_THAT(text, HasSubstr("[type.googleapis.com/spnas.testing.AnalyticTrainerOptions]"));
}

TEST(ConfigTest, MissingPretrainedFileIsAnError) {
  const std::string base = TempDir("no_start");
  auto parsed = Parse(kGood, base);
  EXPECT_THAT(AllErrors(*parsed), HasSubstr("pretrained_model_file '" + base + "/start.pth' of step 'search' "
                                            "does not exist"));
}

TEST(ConfigTest, UnknownFieldsAreAllReportedWithLineAndColumn) {
  const std::string text =
      "general { local_base_path: \"/tmp/x\" seeed: 1 }\n"
      "step {\n"
      "  name: \"a\"\n"
      "  pipe_stepp { type: \"TrainPipeStep\" }\n"
      "}\n";
  auto parsed = Parse(text);
  EXPECT_FALSE(parsed->config.ok());
  const std::string errors = AllErrors(*parsed);
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:1:37: "));
  EXPECT_THAT(errors, HasSubstr("no field named \"seeed\""));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:4:3: "));
  EXPECT_THAT(errors, HasSubstr("no field named \"pipe_stepp\""));
  EXPECT_EQ(parsed->errors.size(), 2u);
}

TEST(ConfigTest, UnknownFieldInsidePluginOptions) {
  const std::string text = R"pb(step {
  name: "a"
  pipe_step { type: "SearchPipeStep" options { [type.googleapis.com/spnas.SearchPipeStepOptions] { freeze_swap_key: true } } }
})pb";
  auto parsed = Parse(text);
  EXPECT_THAT(AllErrors(*parsed), HasSubstr("pipe.textproto:3:"));
  EXPECT_THAT(AllErrors(*parsed), HasSubstr("no field named \"freeze_swap_key\""));
}

TEST(ConfigTest, WrongTypeAndRepeatedSingularAreErrors) {
  auto wrong_type = Parse("general { seed: \"many\" }\n");
  EXPECT_THAT(AllErrors(*wrong_type), HasSubstr("pipe.textproto:1:17: Expected integer"));
  auto twice = Parse("general { seed: 1\n seed: 2 }\n");
  EXPECT_THAT(AllErrors(*twice), HasSubstr("pipe.textproto:2:"));
  EXPECT_THAT(AllErrors(*twice), HasSubstr("\"seed\" is specified multiple times"));
}

TEST(ConfigTest, SemanticErrorsAreCollectedTogether) {
  const std::string text = R"pb(general { local_base_path: "/tmp/spnas_config_semantic" threads: -1 device: "gpu" }
step {
  name: "search"
  pipe_step { type: "SearchPipeStep" }
  search_algorithm { type: "RandomSearh" }
  trainer { type: "AnalyticTrainer" options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 3 } } }
  models_folder: "later"
}
step {
  name: "later"
  pipe_step { type: "TrainPipeStep" }
  trainer { ref: "shared.nope" }
  model { type: "TinyMlp" }
}
step { name: "later" pipe_step { type: "TrainPipeStep" } model { type: "TinyMlp" options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 4 } } } trainer { type: "AnalyticTrainer" } }
)pb";
  auto parsed = Parse(text);
  const std::string errors = AllErrors(*parsed);
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:1:57: general.threads must be >= 0"));
  auto final_step = Parse("general { final_step: \"fulytrain\" }\nstep { name: \"fullytrain\" pipe_step { type: \"TrainPipeStep\" } }");
  EXPECT_THAT(AllErrors(*final_step), HasSubstr("general.final_step 'fulytrain' names no step; did you mean 'fullytrain'?"));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:1:69: general.device must be \"cpu\", \"cuda\" or \"cuda:N\", got \"gpu\""));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:5:3: `search_algorithm`: No registered search_algorithm named "
                                "'RandomSearh'. Did you mean 'RandomSearch'?"));
  EXPECT_THAT(errors, HasSubstr("'AnalyticTrainer' takes options of type spnas.testing.AnalyticTrainerOptions"));
  EXPECT_THAT(errors, HasSubstr("models_folder '/tmp/spnas_config_semantic/output/later' of step 'search' is "
                                "written by step 'later', which runs after it"));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:12:13: ref 'shared.nope' names no shared plugin"));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:13:3: model 'TinyMlp': hidden must be > 0"));
  EXPECT_THAT(errors, HasSubstr("step name 'later' is used twice"));
  EXPECT_GE(parsed->errors.size(), 8u) << errors;
}

TEST(ConfigTest, MissingInputNamesTheStepThatWouldWriteIt) {
  const std::string text = R"pb(general { local_base_path: "/tmp/spnas_config_missing" }
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  trainer { type: "AnalyticTrainer" }
  models_folder: "{local_base_path}/output/serial"
})pb";
  auto parsed = Parse(text);
  EXPECT_THAT(AllErrors(*parsed),
              HasSubstr("pipe.textproto:6:3: models_folder '/tmp/spnas_config_missing/output/serial' of step "
                        "'train' does not exist; it is the output of a step named 'serial', which is not in "
                        "this pipeline"));
}

TEST(ConfigTest, MissingInputsAreOnlyWarningsWhenJustValidating) {
  const std::string text = R"pb(general { local_base_path: "/tmp/spnas_config_missing" }
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  trainer { type: "AnalyticTrainer" }
  pretrained_model_file: "/no/such/weights.pth"
  model { type: "TinyMlp" options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 4 } } }
})pb";
  ConfigErrors errors;
  auto config = ParseConfig(text, "pipe.textproto", ConfigLoadOptions(), &errors);
  ASSERT_TRUE(config.ok());
  ValidatePipeline(*config, &errors, /*inputs_must_exist=*/false);
  EXPECT_TRUE(errors.empty()) << errors.ToStatus();
  ASSERT_EQ(errors.warnings().size(), 1u);
  EXPECT_THAT(errors.warnings()[0], HasSubstr("pretrained_model_file '/no/such/weights.pth' of step 'train' does not exist"));
  ConfigErrors strict;
  ValidatePipeline(*config, &strict);
  EXPECT_EQ(strict.size(), 1u);
}

TEST(ConfigTest, SearchSpaceKeysMustExistInTheModel) {
  std::string text = kGood;
  text.replace(text.find("network.hidden"), 14, "network.hiden");
  auto parsed = Parse(text, TempDir("keys"));
  EXPECT_THAT(AllErrors(*parsed), HasSubstr("key 'network.hiden': spnas.testing.TinyMlpOptions has no field "
                                            "'hiden' (fields: hidden, inputs)"));
}

TEST(ConfigTest, NonFiniteNumbersAreErrorsNamingLineAndField) {
  // nan in an optimizer packed in the trainer's options (an Any in an Any), inf as the second
  // element of a repeated float of a model option, -inf in the trainer's own options.
  const std::string text = R"pb(general { local_base_path: "/tmp/spnas_config_finite" }
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  model {
    type: "FasterRCNN"
    options {
      [type.googleapis.com/spnas.FasterRCNNOptions] {
        aspect_ratios: [0.5, inf]
      }
    }
  }
  trainer {
    type: "Trainer"
    options {
      [type.googleapis.com/spnas.TrainerOptions] {
        optimizer { type: "SGD" options { [type.googleapis.com/spnas.SGDOptions] { lr: nan } } }
        warmup_factor: -inf
      }
    }
  }
})pb";
  auto parsed = Parse(text);
  const std::string errors = AllErrors(*parsed);
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:9:9: `step[0].model.options.aspect_ratios[1]` must be a finite "
                                "number, got inf"));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:17:84: `step[0].trainer.options.optimizer.options.lr` must be a "
                                "finite number, got nan"));
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:18:9: `step[0].trainer.options.warmup_factor` must be a finite "
                                "number, got -inf"));
}

TEST(ConfigTest, NonFiniteNumberInASharedPluginIsReportedOnceAtItsLine) {
  const std::string text = R"pb(general { local_base_path: "/tmp/spnas_config_finite" }
shared {
  name: "trainer"
  plugin { type: "Trainer" options { [type.googleapis.com/spnas.TrainerOptions] { grad_clip_norm: inf } } }
}
step { name: "a" pipe_step { type: "TrainPipeStep" } model { type: "TinyMlp" } trainer { ref: "shared.trainer" } }
step { name: "b" pipe_step { type: "TrainPipeStep" } model { type: "TinyMlp" } trainer { ref: "shared.trainer" } }
)pb";
  auto parsed = Parse(text);
  const std::string errors = AllErrors(*parsed);
  EXPECT_THAT(errors, HasSubstr("pipe.textproto:4:83: `shared[0].plugin.options.grad_clip_norm` must be a finite "
                                "number, got inf"));
  EXPECT_EQ(errors.find("must be a finite number"), errors.rfind("must be a finite number")) << errors;
}

// A one-step pipeline training on `device` in `precision`.
std::string PrecisionConfig(const std::string& device, const std::string& precision) {
  return R"pb(general { local_base_path: "/tmp/spnas_config_precision" device: ")pb" + device + R"pb(" }
step {
  name: "train"
  pipe_step { type: "TrainPipeStep" }
  model { type: "TinyMlp" options { [type.googleapis.com/spnas.testing.TinyMlpOptions] { hidden: 4 } } }
  trainer {
    type: "Trainer"
    options {
      [type.googleapis.com/spnas.TrainerOptions] {
        epochs: 1
        mixed_precision: )pb" + precision + R"pb(
      }
    }
  }
})pb";
}

TEST(ConfigTest, Float16OnTheCpuIsAnErrorAtValidation) {
  auto parsed = Parse(PrecisionConfig("cpu", "FLOAT16"));
  EXPECT_THAT(AllErrors(*parsed), HasSubstr("pipe.textproto:11:9: mixed_precision FLOAT16 needs a CUDA device, but "
                                            "the configured device (general.device or --device) is \"cpu\""));
  EXPECT_EQ(parsed->errors.size(), 1u) << AllErrors(*parsed);
  // --device=cpu over a config on cuda is the same error.
  ConfigErrors errors;
  ConfigLoadOptions options;
  options.device = "cpu";
  auto config = ParseConfig(PrecisionConfig("cuda", "FLOAT16"), "pipe.textproto", options, &errors);
  ASSERT_TRUE(config.ok());
  ValidatePipeline(*config, &errors);
  EXPECT_THAT(errors.ToStatus().message(), HasSubstr("pipe.textproto:11:9: mixed_precision FLOAT16 needs a CUDA"));
}

TEST(ConfigTest, MixedPrecisionThatTheDeviceRunsValidates) {
  for (const auto& [device, precision] : std::vector<std::pair<std::string, std::string>>{
           {"cpu", "BFLOAT16"}, {"cpu", "FLOAT32"}, {"cuda", "FLOAT16"}, {"cuda:1", "FLOAT16"}, {"cuda", "BFLOAT16"}}) {
    auto parsed = Parse(PrecisionConfig(device, precision));
    EXPECT_TRUE(parsed->errors.empty()) << device << " " << precision << ": " << AllErrors(*parsed);
  }
}

TEST(ConfigTest, OverrideFieldsReplacesRepeatedAndMergesMessages) {
  HyperparameterSpaceOptions base, over;
  auto* h = base.add_hyperparameter();
  h->set_key("a");
  h->add_range("1");
  over.add_hyperparameter()->set_key("b");
  OverrideFields(over, &base);
  ASSERT_EQ(base.hyperparameter_size(), 1);
  EXPECT_EQ(base.hyperparameter(0).key(), "b");
}

}  // namespace
}  // namespace spnas
