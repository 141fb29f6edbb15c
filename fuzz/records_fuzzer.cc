// Fuzzes the record store's readers, as `--resume`, `report` and the steps reading an earlier
// step's records call them. The input is "<performance_0.json>\n----\n<desc_0.json>".
#include <cstdint>

#include "fuzz/fuzz_input.h"
#include "spnas/core/record_store.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spnas::fuzz::InitQuietly();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> parts = spnas::fuzz::SplitParts(data, size, 2);
  spnas::fuzz::WriteScratchFile("records/performance_0.json", parts[0]);
  spnas::fuzz::WriteScratchFile("records/desc_0.json", parts.size() > 1 ? parts[1] : "{}");
  spnas::RecordStore store(spnas::fuzz::ScratchDir() + "/records");
  auto trials = store.LoadAll();
  if (trials.ok()) {
    for (const spnas::Trial& trial : *trials) {
      (void)spnas::MutationsText(trial.record.mutations(), ",");
      (void)spnas::ParseRecordLabel(trial.record.parent());
      (void)spnas::ToJson(trial.record);
    }
  }
  return 0;
}
