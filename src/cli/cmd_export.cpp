#include <fmt/format.h>

#include "base/values.hpp"
#include "cli/cli.hpp"
#include "export/exports.hpp"
#include "report/schema.hpp"

namespace trainmeter::cli {

int cmd_export(const std::vector<std::string>& args) {
  Args a("export", "REPORT.json --format csv|prom|trace|html [-o OUT]");
  a.option("--format",
           "csv (CodeCarbon emissions.csv row, appended), prom (Prometheus textfile), "
           "trace (Chrome trace JSON) or html",
           "-f");
  a.option("--out", "output file (default: beside the report: .csv, .prom, .trace.json, .html)",
           "-o");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string& path = a.positional()[0];
  const std::string format = a.get("--format");
  const detail::ExportFormat* const known = detail::find_export_format(format);
  const std::string accepted = detail::export_format_names(", ");
  if (!a.has("--format"))
    throw CliError{fmt::format("--format (-f) is required; accepted: {}", accepted)};
  if (!known)
    throw CliError{fmt::format("--format: '{}' is not a format; accepted: {}", format, accepted)};
  // Formats that do not read steps[] are made from the report's sections alone, loaded without
  // the steps (memory: the sections, whatever the number of steps); trace reads the steps from
  // the file one at a time as it writes their events.
  const bool streamed = detail::export_streams_steps(format);
  const nlohmann::json report = load_valid_report(path, known->needs_steps && !streamed);
  const std::string out = a.get("--out", detail::export_path(path, format));
  refuse_output_over_input(out, {path});
  if (streamed) {
    const std::string error = detail::write_export_streamed(report, path, format, out);
    if (!error.empty()) throw CliError{error};
    if (out != "-") fmt::print("wrote {}\n", out);
    return kExitOk;
  }
  if (out == "-") {
    fmt::print("{}", detail::export_text(report, format));
    return kExitOk;
  }
  const std::string error = detail::write_export(report, format, out);
  if (!error.empty()) throw CliError{error};
  fmt::print("wrote {}\n", out);
  return kExitOk;
}

}  // namespace trainmeter::cli
