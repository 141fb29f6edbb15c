// The version of spnas and its commit, written into every record (TrialRecord.provenance).
#ifndef SPNAS_CORE_VERSION_H_
#define SPNAS_CORE_VERSION_H_

#include <string>

namespace spnas {

inline constexpr char kSpnasVersion[] = "0.5.0";

// The git commit the running program was built from ("" when not known): the spnas binary sets
// it at start-up from Bazel's stamped workspace status.
inline std::string& BuildCommit() {
  static std::string commit;
  return commit;
}

}  // namespace spnas

#endif  // SPNAS_CORE_VERSION_H_
