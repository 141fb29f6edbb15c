// Fuzzes the pipeline config loader: strict textproto parsing, `ref` resolution,
// {local_base_path} substitution, and the checks of every plugin's options.
#include <cstdint>

#include <google/protobuf/stubs/logging.h>

#include "fuzz/fuzz_input.h"
#include "spnas/core/config.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  google::protobuf::SetLogHandler(nullptr);  // e.g. "invalid UTF-8" in a fuzzed string field
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  spnas::ConfigLoadOptions options;
  options.local_base_path = spnas::fuzz::ScratchDir() + "/base";
  spnas::ConfigErrors errors;
  spnas::StatusOr<spnas::LoadedConfig> config =
      spnas::ParseConfig(text, spnas::fuzz::ScratchDir() + "/config.textproto", options, &errors);
  if (config.ok() && errors.empty()) {
    spnas::CheckConfig(*config, &errors, /*inputs_must_exist=*/false);
    (void)config->ResolvedText();
    for (const spnas::StepConfig& step : config->config().step()) {
      (void)config->OutputDir(step.name());
      (void)config->InputDir(step);
    }
  }
  (void)errors.ToStatus();
  return 0;
}
