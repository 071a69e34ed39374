#include <fmt/format.h>

#include "cli/cli.hpp"
#include "report/schema.hpp"
#include "report/summary.hpp"

namespace trainmeter::cli {

int cmd_summary(const std::vector<std::string>& args) {
  Args a("summary", "REPORT.json");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string& path = a.positional()[0];
  const nlohmann::json report = load_report(path);
  const auto errors = detail::validate_schema(report, detail::report_schema(), 1);
  if (!errors.empty())
    throw CliError{fmt::format("{}: not a valid report: {} (see trainmeter validate)", path, errors[0])};
  fmt::print("{}", detail::render_summary(report));
  return kExitOk;
}

}  // namespace trainmeter::cli
