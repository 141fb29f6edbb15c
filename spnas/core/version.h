// The version of spnas, written into every record (TrialRecord.provenance).
#ifndef SPNAS_CORE_VERSION_H_
#define SPNAS_CORE_VERSION_H_

namespace spnas {

inline constexpr char kSpnasVersion[] = "0.5.0";

}  // namespace spnas

#endif  // SPNAS_CORE_VERSION_H_
