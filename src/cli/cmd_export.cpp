#include <fmt/format.h>

#include "base/values.hpp"
#include "cli/cli.hpp"
#include "export/exports.hpp"
#include "report/json_io.hpp"
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
  // Every format is made from the report's sections, loaded without the steps (memory: the
  // sections, whatever the number of steps); trace and html read the steps from the file one at
  // a time as they are made.
  const nlohmann::json report = load_valid_report(path, false);
  const std::string out = a.get("--out", detail::export_path(path, format));
  refuse_output_over_input(out, {path});
  if (known->needs_steps) {
    const detail::StepSource steps = [&](const detail::StepVisitor& visit) {
      return detail::for_each_step(path, visit);
    };
    const std::string error = detail::write_export_streamed(report, steps, format, out);
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
