// Seeds derived from seeds: the same streams on every machine and in every run.
#ifndef SPNAS_CORE_RANDOM_H_
#define SPNAS_CORE_RANDOM_H_

#include <cstdint>

namespace spnas {

// splitmix64's finaliser: a well-mixed 64-bit value from any input (nearby inputs, e.g.
// consecutive ids, give unrelated outputs).
inline uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace spnas

#endif  // SPNAS_CORE_RANDOM_H_
