// The outcome of probing one energy source, as listed in energy.sources_tried and by
// `trainmeter probe`.
#pragma once

#include <string>

namespace trainmeter::detail {

struct SourceStatus {
  std::string source;  ///< e.g. "rapl:package-0", "perf:energy-pkg", "nvml", "estimate:tdp"
  std::string status;  ///< "ok" or a diag:: status word (unavailable, permission_denied, ...)
  std::string reason;  ///< one sentence: what was found, or exactly why not and how to fix it
};

}  // namespace trainmeter::detail
