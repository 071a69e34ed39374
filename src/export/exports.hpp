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
/// export_text(report, "trace") of the report file `report_path`, whose sections (steps[] not
/// loaded: load_report_sections()) are `sections`: the steps are read from the file one at a
/// time and their events handed to `write` in pieces as they are made. "" or the read's error.
std::string write_trace_streamed(const nlohmann::json& sections, const std::string& report_path,
                                 const std::function<void(const std::string&)>& write);

/// One self-contained HTML page with inline SVG charts (no scripts from elsewhere, no network).
std::string html_page(const nlohmann::json& report);

/// The file an export is written to beside the report: <report>.csv, .prom, .trace.json, .html.
std::string export_path(const std::string& report_path, const std::string& format);

/// Writes `format` of `report` to `path`: CSV appends a row (header only when the file is new or
/// empty; an existing file whose header differs is refused), the others replace the file
/// atomically. Returns "" or a one-line error naming the file.
std::string write_export(const nlohmann::json& report, const std::string& format,
                         const std::string& path) noexcept;

/// Whether `format` is made by write_export_streamed() from the report file itself (its steps read
/// one at a time) rather than from a document of every step: trace.
bool export_streams_steps(const std::string& format);
/// write_export() of the report file `report_path` whose sections (steps[] not loaded) are
/// `sections`, for a format of export_streams_steps(): the same bytes, written as the steps are
/// read (to stdout for `path` "-"). Returns "" or a one-line error naming the file.
std::string write_export_streamed(const nlohmann::json& sections, const std::string& report_path,
                                  const std::string& format, const std::string& path) noexcept;

/// The export's whole text (csv: the header line and the run's row), for a format of
/// kExportFormats (base/values.hpp); throws Error for another name.
std::string export_text(const nlohmann::json& report, const std::string& format);

}  // namespace trainmeter::detail
