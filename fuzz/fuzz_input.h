// What the fuzz targets share: spnas's readers take paths, so each input is written to files in
// a scratch folder of this process (in memory under /dev/shm when there is one), and splitting
// one input into several files.
#ifndef SPNAS_FUZZ_FUZZ_INPUT_H_
#define SPNAS_FUZZ_FUZZ_INPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spnas::fuzz {

// Quiet logging and one thread: a fuzzer runs millions of inputs, which must run deterministically.
void InitQuietly();

// The scratch folder of this process (created once, removed at exit).
const std::string& ScratchDir();

// Writes `bytes` to `<scratch>/<relative path>` (creating folders) and returns its path.
std::string WriteScratchFile(const std::string& relative_path, std::string_view bytes);

// Splits `data` at every line "----\n" into at most `max_parts` parts (the last one keeps the
// rest), so one input can fill several files of a format that refers to others.
std::vector<std::string_view> SplitParts(const uint8_t* data, size_t size, size_t max_parts);

}  // namespace spnas::fuzz

#endif  // SPNAS_FUZZ_FUZZ_INPUT_H_
