// Assembles the report document from the collector's aggregates. Components then fill their
// sections (memory, energy, carbon, ...) and finalize_report() adds diagnostics.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/component.hpp"
#include "core/session_impl.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter::detail {

/// The report with every top-level key present; sections owned by components are null. Fills
/// `out`'s phases, status and step counts.
nlohmann::json build_report(const RunContext& ctx, const RunState& state, Report* out);

/// Writes diagnostics into the document and copies headline figures into `out`.
void finalize_report(RunContext& ctx, nlohmann::json& doc, Report* out);

/// The whole report step of finish(): builds the document from the collector's state, lets the
/// components fill their sections, writes it to ctx.report_path (temp file + rename) and fills
/// `out` (status, headline figures, path, text); then the components' after_write(). Failures
/// become diagnostics. The golden test (tests/core/test_golden.cpp) pins its output.
void write_run_report(RunContext& ctx, const RunState& state,
                      const std::vector<std::unique_ptr<Component>>& components, Report* out);

}  // namespace trainmeter::detail
