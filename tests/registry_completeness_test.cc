// Every plugin kind's names equal the checked-in list, so a plugin that silently stopped being
// linked (or registered) fails here. Update tests/registered_plugins.txt with new plugins.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "spnas/core/registry.h"

namespace spnas {
namespace {

TEST(RegistryCompletenessTest, RegisteredPluginsMatchTheCheckedInList) {
  std::ifstream in("tests/registered_plugins.txt");
  ASSERT_TRUE(in) << "tests/registered_plugins.txt not found";
  std::map<std::string, std::set<std::string>> expected;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string kind, name;
    fields >> kind >> name;
    if (!name.empty())
      expected[kind].insert(name);
    else
      expected[kind];
  }
  std::map<std::string, std::set<std::string>> actual;
  for (const RegistryBase* registry : AllRegistries()) {
    auto names = registry->Names();
    actual[registry->kind()] = std::set<std::string>(names.begin(), names.end());
  }
  for (const auto& [kind, names] : expected) {
    ASSERT_TRUE(actual.count(kind)) << "plugin kind '" << kind << "' is not linked";
    EXPECT_EQ(actual[kind], names) << "plugins of kind '" << kind << "'";
  }
  for (const auto& [kind, names] : actual) {
    EXPECT_TRUE(expected.count(kind)) << "plugin kind '" << kind << "' is missing from the list";
  }
}

}  // namespace
}  // namespace spnas
