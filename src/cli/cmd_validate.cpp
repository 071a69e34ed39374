#include <fmt/format.h>

#include "cli/cli.hpp"
#include "report/schema.hpp"

namespace trainmeter::cli {

int cmd_validate(const std::vector<std::string>& args) {
  Args a("validate", "REPORT.json [REPORT.json ...]");
  a.flag("--quiet", "print nothing when valid");
  if (!a.parse(args, 1, 1000000)) return kExitOk;
  int status = kExitOk;
  for (const std::string& path : a.positional()) {
    const nlohmann::json report = load_report(path);
    const auto errors = detail::validate_schema(report, detail::report_schema());
    if (errors.empty()) {
      if (!a.has("--quiet")) fmt::print("{}: valid (schema version {})\n", path, report["schema_version"].get<int>());
      continue;
    }
    status = kExitFailed;
    for (const auto& e : errors) fmt::print(stderr, "{}: {}\n", path, e);
  }
  return status;
}

}  // namespace trainmeter::cli
