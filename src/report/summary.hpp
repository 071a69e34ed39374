// Human-readable summary of a report document (used by `trainmeter summary` and
// trainmeter::format_summary()).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// Renders a schema-valid report as a few aligned lines of text, the findings first (the
/// report's own, else computed by findings()). Missing (null) figures print as "n/a"; never
/// throws on a valid report.
std::string render_summary(const nlohmann::json& report);

/// The same figures as JSON, for scripts (`trainmeter summary --json`): findings, run (with
/// cpu_time_s), host, phases (step
/// counts, step_time_ns percentiles, throughput), memory, model, energy (total and components),
/// carbon, cost and the diagnostics, each under the report's own key names; absent is null.
nlohmann::json summary_json(const nlohmann::json& report);

/// The ranks of a merged report as summary, HTML and Prometheus show them; null for a single
/// rank's report. {"phase": the phase shown (train if present, else the first),
/// "per_rank": [{rank, hostname, p50_ns, mean_ns, max_ns, slowest_steps, energy_j}],
/// "stragglers": [{rank, slowest_steps, share}] most often slowest first (share of the compared
/// steps), "per_host": [{host, ranks, energy_j, machine_energy_j}]}; unknown figures are null.
nlohmann::json ranks_view(const nlohmann::json& report);

}  // namespace trainmeter::detail
