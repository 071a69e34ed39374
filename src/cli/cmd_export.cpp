#include <fmt/format.h>

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
  bool known = false;
  std::string accepted;
  for (const char* f : detail::kExportFormats) {
    known = known || format == f;
    accepted += (accepted.empty() ? "" : ", ") + std::string(f);
  }
  if (!a.has("--format"))
    throw CliError{fmt::format("--format (-f) is required; accepted: {}", accepted)};
  if (!known)
    throw CliError{fmt::format("--format: '{}' is not a format; accepted: {}", format, accepted)};
  const nlohmann::json report = load_valid_report(path);
  const std::string out = a.get("--out", detail::export_path(path, format));
  refuse_output_over_input(out, {path});
  if (out == "-") {
    if (format == "csv")
      fmt::print("{}{}", detail::csv_header_line(), detail::csv_row_line(report));
    else if (format == "prom")
      fmt::print("{}", detail::prometheus_text(report));
    else if (format == "trace")
      fmt::print("{}\n", detail::chrome_trace(report).dump(
                             -1, ' ', false, nlohmann::json::error_handler_t::replace));
    else
      fmt::print("{}", detail::html_page(report));
    return kExitOk;
  }
  const std::string error = detail::write_export(report, format, out);
  if (!error.empty()) throw CliError{error};
  fmt::print("wrote {}\n", out);
  return kExitOk;
}

}  // namespace trainmeter::cli
