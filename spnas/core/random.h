// Seeds derived from seeds, and fingerprints of text: the same values on every machine and in
// every run.
#ifndef SPNAS_CORE_RANDOM_H_
#define SPNAS_CORE_RANDOM_H_

#include <cstdint>
#include <string_view>

namespace spnas {

// splitmix64's finaliser: a well-mixed 64-bit value from any input (nearby inputs, e.g.
// consecutive ids, give unrelated outputs).
inline uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// 64-bit FNV-1a: a fingerprint of `text` (not a cryptographic hash).
inline uint64_t Fnv1a64(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

}  // namespace spnas

#endif  // SPNAS_CORE_RANDOM_H_
