// What the session needs from the layers above it, declared here and defined there, so that no
// include points from core up (cmake/CheckLayers.cmake): the built-in components
// (compose/components.cpp) and the report step of finish() (report/builder.cpp).
#pragma once

#include <memory>
#include <vector>

#include "base/component.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter::detail {

struct RunState;

/// The built-in components for a run, in contribution order. Throws Error on configuration
/// problems a component finds at construction (unknown country, unreadable time series...).
std::vector<std::unique_ptr<Component>> make_builtin_components(RunContext& ctx);

/// The whole report step of finish(): builds the document from the collector's state, lets the
/// components fill their sections, writes it to ctx.report_path (temp file + rename) and fills
/// `out` (status, headline figures, path, text); then the components' after_write(). Failures
/// become diagnostics. The golden test (tests/report/golden_test.cpp) pins its output.
void write_run_report(RunContext& ctx, const RunState& state,
                      const std::vector<std::unique_ptr<Component>>& components, Report* out);

}  // namespace trainmeter::detail
