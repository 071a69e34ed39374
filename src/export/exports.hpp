// Exports of a finished report into formats existing dashboards read: CodeCarbon's emissions.csv,
// Prometheus text exposition (node_exporter textfile collector), Chrome Trace Event JSON
// (Perfetto, chrome://tracing) and a self-contained HTML page. Every function takes a report
// document (docs/report.schema.json), tolerates absent sections (they render as empty / omitted,
// never as 0) and never throws except std::bad_alloc.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/step_source.hpp"

namespace trainmeter::detail {

/// CodeCarbon's emissions.csv columns, in its order (EmissionsData, codecarbon v2/v3).
const std::vector<std::string>& csv_columns();
/// One CSV line (RFC 4180 quoting, "\n" terminated) with the column names.
std::string csv_header_line();
/// One CSV line for the run: durations in s, energies in kWh, power in W, emissions in kg CO2e.
/// Not-measured values are empty cells.
std::string csv_row_line(const nlohmann::json& report);

/// Prometheus text exposition format 0.0.4, labelled by run, run_id and rank.
std::string prometheus_text(const nlohmann::json& report);

/// Chrome Trace Event Format ("JSON Object Format"), timestamps in microseconds from run start.
nlohmann::json chrome_trace(const nlohmann::json& report);
/// export_text(report, "trace") of a report whose sections are `sections` (steps[] empty or not
/// loaded) and whose steps `steps` hands out one at a time: each step's events are handed to
/// `write` in pieces as they are made. "" or the step source's error.
std::string write_trace_streamed(const nlohmann::json& sections, const StepSource& steps,
                                 const std::function<void(const std::string&)>& write);

/// One self-contained HTML page with inline SVG charts (no scripts from elsewhere, no network).
std::string html_page(const nlohmann::json& report);
/// html_page() of a report whose sections are `sections` and whose steps `steps` hands out one
/// at a time: the page keeps what its charts draw of each step (about 70 bytes a step), never a
/// document of the steps, and hands the page to `write`. "" or the step source's error.
std::string write_html_streamed(const nlohmann::json& sections, const StepSource& steps,
                                const std::function<void(const std::string&)>& write);

/// The file an export is written to beside the report: <report>.csv, .prom, .trace.json, .html.
std::string export_path(const std::string& report_path, const std::string& format);

/// Writes `format` of `report` to `path`: CSV appends a row (header only when the file is new or
/// empty; an existing file whose header differs is refused), the others replace the file
/// atomically. Returns "" or a one-line error naming the file.
std::string write_export(const nlohmann::json& report, const std::string& format,
                         const std::string& path) noexcept;

/// write_export() for a format that reads steps (ExportFormat::needs_steps: trace, html) of a
/// report whose sections are `sections` (steps[] empty or not loaded) and whose steps `steps`
/// hands out one at a time: the same bytes, made as the steps are handed out (to stdout for
/// `path` "-"). Returns "" or a one-line error naming the file.
std::string write_export_streamed(const nlohmann::json& sections, const StepSource& steps,
                                  const std::string& format, const std::string& path) noexcept;

/// The export's whole text (csv: the header line and the run's row), for a format of
/// kExportFormats (base/values.hpp); throws Error for another name.
std::string export_text(const nlohmann::json& report, const std::string& format);

}  // namespace trainmeter::detail
