// Value lists the key table (core/config.cpp), the CLI and the dispatch all read: each list is
// written once, here or in the module that owns its values (energy sources: the registration
// table of energy/). Layer: base, so every module above can read them.
#pragma once

#include <string>
#include <string_view>

namespace trainmeter::detail {

/// The phase of Session::step() without a phase name, and the one summaries, comparisons and
/// forecasts describe by default when a report has it.
inline constexpr std::string_view kDefaultPhase = "train";

/// An export format: configuration key `exports`, `trainmeter export --format`.
struct ExportFormat {
  std::string_view name;    ///< the name in `exports` and on the command line
  std::string_view suffix;  ///< the file beside the report: run.json -> run<suffix>
  std::string_view what;    ///< one line for help texts and docs
  bool needs_steps;         ///< reads steps[], one at a time (write_export_streamed())
};

inline constexpr ExportFormat kExportFormats[] = {
    {"csv", ".csv", "CodeCarbon's emissions.csv columns, one row appended per run", false},
    {"prom", ".prom", "Prometheus text exposition (node_exporter textfile collector)", false},
    {"trace", ".trace.json", "Chrome trace JSON (Perfetto, chrome://tracing)", true},
    {"html", ".html", "a self-contained HTML page", true},
};

/// The format named `name`, or nullptr.
inline const ExportFormat* find_export_format(std::string_view name) noexcept {
  for (const ExportFormat& f : kExportFormats)
    if (f.name == name) return &f;
  return nullptr;
}

/// The names joined by `separator`: "csv,prom,trace,html".
inline std::string export_format_names(std::string_view separator = ",") {
  std::string out;
  for (const ExportFormat& f : kExportFormats) {
    if (!out.empty()) out += separator;
    out += f.name;
  }
  return out;
}

}  // namespace trainmeter::detail
