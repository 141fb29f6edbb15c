// output/report.html: a self-contained page (no network) with the search's trials plotted as
// mAP against parameters (seeds, Pareto front and final model marked), a table per step, and the
// final model's metrics and architecture.
#ifndef SPNAS_REPORT_REPORT_H_
#define SPNAS_REPORT_REPORT_H_

#include <string>

#include "spnas/core/config.h"
#include "spnas/core/status.h"

namespace spnas {

// Writes {local_base_path}/output/report.html from the steps' records; returns its path.
StatusOr<std::string> WriteReport(const LoadedConfig& config);

}  // namespace spnas

#endif  // SPNAS_REPORT_REPORT_H_
