// Assembles the report document from the collector's aggregates. Components then fill their
// sections (memory, energy, carbon, ...) and finalize_report() adds diagnostics.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/component.hpp"
#include "core/composition.hpp"
#include "core/session_impl.hpp"
#include "platform/host.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter::detail {

/// The report with every top-level key present; sections owned by components are null. Fills
/// `out`'s phases, status and step counts.
nlohmann::json build_report(const RunContext& ctx, const RunState& state, Report* out);

/// The report's `host` section from the facts read at start (GPUs, torch and CUDA versions are
/// filled later by the components that know them). The stream's header carries the same.
nlohmann::json host_section(const HostInfo& host);

/// A duration statistics object of the report (a phase's step_time_ns, cpu_time_ns) over all of
/// `values` (ns): Welford moments, exact percentiles by linear interpolation rounded to whole ns
/// within [min, max]; null when empty. The session (which may use its sketch instead), recover
/// and merge all write them through stats_json().
nlohmann::json exact_stats_json(std::vector<double> values);

/// Writes diagnostics into the document and copies headline figures into `out`.
void finalize_report(RunContext& ctx, nlohmann::json& doc, Report* out);

// write_run_report(), the report step of finish(), is declared in core/composition.hpp (the
// session calls it) and defined in builder.cpp.

}  // namespace trainmeter::detail
