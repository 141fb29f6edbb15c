#include "spnas/core/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/test_plugins.pb.h"

namespace spnas {
namespace {

using ::testing::HasSubstr;

class Thing {
 public:
  virtual ~Thing() = default;
  virtual int value() const = 0;
};

SPNAS_DECLARE_REGISTRY(ThingRegistry, Thing, int);
SPNAS_DEFINE_REGISTRY(ThingRegistry, "thing", Thing, int);

class GoodThing : public Thing {
 public:
  using Options = testing::TinyMlpOptions;
  GoodThing(const Options& options, int offset) : value_(options.hidden() + offset) {
    if (options.hidden() == 13) throw std::runtime_error("13 is unlucky\nException raised from GoodThing");
  }
  static Status ValidateOptions(const Options& options) {
    if (options.hidden() < 0) return InvalidArgumentError("hidden must be >= 0");
    return Status::Ok();
  }
  int value() const override { return value_; }

 private:
  int value_;
};
SPNAS_REGISTER_PLUGIN(ThingRegistry, GoodThing);

class OtherThing : public Thing {
 public:
  using Options = testing::AnalyticTrainerOptions;
  OtherThing(const Options&, int) {}
  int value() const override { return -1; }
};
SPNAS_REGISTER_PLUGIN(ThingRegistry, OtherThing);

// Its defaults come from SetDefaults alone; validation and construction both see them.
class DefaultedThing : public Thing {
 public:
  using Options = testing::TinyMlpOptions;
  DefaultedThing(const Options& options, int) : value_(options.hidden() * 100 + options.inputs()) {}
  static void SetDefaults(Options* options) {
    if (options->hidden() == 0) options->set_hidden(7);
  }
  static Status ValidateOptions(const Options& options) {
    if (options.hidden() <= 0) return InvalidArgumentError("hidden must be > 0 (the default is 7)");
    return Status::Ok();
  }
  int value() const override { return value_; }

 private:
  int value_;
};
SPNAS_REGISTER_PLUGIN(ThingRegistry, DefaultedThing);

google::protobuf::Any Pack(const google::protobuf::Message& m) {
  google::protobuf::Any any;
  any.PackFrom(m);
  return any;
}

TEST(RegistryTest, CreatesWithTypedOptionsAndExtraArguments) {
  testing::TinyMlpOptions options;
  options.set_hidden(5);
  auto thing = ThingRegistry().Create("GoodThing", Pack(options), 10);
  ASSERT_TRUE(thing.ok()) << thing.status();
  EXPECT_EQ((*thing)->value(), 15);
}

TEST(RegistryTest, MissingOptionsMeanDefaults) {
  auto thing = ThingRegistry().Create("GoodThing", google::protobuf::Any(), 3);
  ASSERT_TRUE(thing.ok()) << thing.status();
  EXPECT_EQ((*thing)->value(), 3);
}

TEST(RegistryTest, UnknownNameListsNamesSuggestsAndMentionsLinking) {
  auto thing = ThingRegistry().Create("GodThing", google::protobuf::Any(), 0);
  ASSERT_FALSE(thing.ok());
  EXPECT_EQ(thing.status().code(), StatusCode::kNotFound);
  const std::string& message = thing.status().message();
  EXPECT_THAT(message, HasSubstr("No registered thing named 'GodThing'"));
  EXPECT_THAT(message, HasSubstr("Did you mean 'GoodThing'?"));
  EXPECT_THAT(message, HasSubstr("GoodThing, OtherThing"));
  EXPECT_THAT(message, HasSubstr("not linked into this binary"));
}

TEST(RegistryTest, NoSuggestionWhenNothingIsClose) {
  auto info = ThingRegistry().Info("Completely");
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(info.status().message(), ::testing::Not(HasSubstr("Did you mean")));
}

TEST(RegistryTest, OptionsOfAnotherTypeAreRejected) {
  testing::AnalyticTrainerOptions wrong;
  wrong.set_best_hidden(1);
  auto thing = ThingRegistry().Create("GoodThing", Pack(wrong), 0);
  ASSERT_FALSE(thing.ok());
  EXPECT_THAT(thing.status().message(),
              HasSubstr("'GoodThing' takes options of type spnas.testing.TinyMlpOptions, but the config "
                        "gives spnas.testing.AnalyticTrainerOptions"));
}

TEST(RegistryTest, PluginValidatesItsOptionsBeforeConstruction) {
  testing::TinyMlpOptions options;
  options.set_hidden(-2);
  auto thing = ThingRegistry().Create("GoodThing", Pack(options), 0);
  ASSERT_FALSE(thing.ok());
  EXPECT_THAT(thing.status().message(), HasSubstr("thing 'GoodThing': hidden must be >= 0"));
}

TEST(RegistryTest, DuplicateNameNamesBothSites) {
  auto entry = ThingRegistry().MakeEntry<OtherThing>("GoodThing", "elsewhere.cc", 42);
  Status status = ThingRegistry().Register(entry);
  ASSERT_EQ(status.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(status.message(), HasSubstr("Duplicate thing name 'GoodThing'"));
  EXPECT_THAT(status.message(), HasSubstr("tests/registry_test.cc:"));
  EXPECT_THAT(status.message(), HasSubstr("elsewhere.cc:42"));
}

TEST(RegistryDeathTest, DuplicateRegistrationIsFatalAtStartUp) {
  EXPECT_DEATH(
      {
        Registrar registrar(ThingRegistry().Register(ThingRegistry().MakeEntry<OtherThing>("OtherThing", "dup.cc", 7)));
      },
      "fatal plugin registration error: Duplicate thing name 'OtherThing'.*dup.cc:7");
}

TEST(RegistryTest, DefaultsHaveOneSourceSeenByValidationConstructionAndListing) {
  testing::TinyMlpOptions inputs_only;
  inputs_only.set_inputs(3);
  EXPECT_TRUE(ThingRegistry().ValidateOptions("DefaultedThing", Pack(inputs_only)).ok());
  auto thing = ThingRegistry().Create("DefaultedThing", Pack(inputs_only), 0);
  ASSERT_TRUE(thing.ok()) << thing.status();
  EXPECT_EQ((*thing)->value(), 703);
  testing::TinyMlpOptions given;
  given.set_hidden(2);
  EXPECT_EQ(ThingRegistry().Create("DefaultedThing", Pack(given), 0).value()->value(), 200);
  EXPECT_EQ(ThingRegistry().Info("DefaultedThing").value().default_options->ShortDebugString(), "hidden: 7");
  EXPECT_EQ(ThingRegistry().Info("GoodThing").value().default_options->ShortDebugString(), "");
}

TEST(RegistryTest, ConstructorExceptionIsAnErrorWithoutBacktrace) {
  testing::TinyMlpOptions options;
  options.set_hidden(13);
  auto thing = ThingRegistry().Create("GoodThing", Pack(options), 0);
  ASSERT_FALSE(thing.ok());
  EXPECT_EQ(thing.status().message(), "thing 'GoodThing' cannot be built: 13 is unlucky");
}

TEST(StatusOrDeathTest, ValueOfAnErrorStopsWithTheMessage) {
  StatusOr<int> missing = NotFoundError("no such thing 'x'");
  EXPECT_DEATH((void)missing.value(), "value\\(\\) of a StatusOr holding an error: NOT_FOUND: no such thing 'x'");
  EXPECT_DEATH((void)*missing, "no such thing 'x'");
  EXPECT_THROW(ValueOrThrow(std::move(missing)), std::invalid_argument);
  EXPECT_EQ(ValueOrThrow(StatusOr<int>(4)), 4);
}

TEST(RegistryTest, KindsAreListedInOrder) {
  bool found = false;
  std::string previous;
  for (const RegistryBase* registry : AllRegistries()) {
    EXPECT_LE(previous, registry->kind());
    previous = registry->kind();
    found |= registry->kind() == "thing";
  }
  EXPECT_TRUE(found);
  EXPECT_FALSE(FindRegistry("thnig").ok());
}

TEST(RegistryTest, NearestName) {
  EXPECT_EQ(NearestName("SpNass", {"SpNasS", "SpNasP", "RandomSearch"}), "SpNasS");
  EXPECT_EQ(NearestName("randomsearch", {"SpNasS", "RandomSearch"}), "RandomSearch");
  EXPECT_EQ(NearestName("xyz", {"SpNasS", "RandomSearch"}), "");
}

}  // namespace
}  // namespace spnas
