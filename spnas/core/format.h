// Human-readable figures for progress lines and reports.
#ifndef SPNAS_CORE_FORMAT_H_
#define SPNAS_CORE_FORMAT_H_

#include <string>

namespace spnas {

// "42s", "3m05s", "2h07m".
std::string FormatDuration(double seconds);

}  // namespace spnas

#endif  // SPNAS_CORE_FORMAT_H_
