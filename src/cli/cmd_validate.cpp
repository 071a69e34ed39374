#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "cli/cli.hpp"
#include "report/schema.hpp"

namespace trainmeter::cli {

int cmd_validate(const std::vector<std::string>& args) {
  Args a("validate", "REPORT.json [REPORT.json ...] [--quiet | --json]");
  a.flag("--quiet", "print nothing when valid");
  a.flag("--json",
         "print [{\"path\", \"valid\", \"schema_version\", \"errors\": [...]}] on stdout, one "
         "entry per report");
  if (!a.parse(args, 1, 1000000)) return kExitOk;
  int status = kExitOk;
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& path : a.positional()) {
    const nlohmann::json report = load_report(path);
    const auto errors = detail::validate_schema(report, detail::report_schema());
    if (!errors.empty()) status = kExitFailed;
    if (a.has("--json")) {
      results.push_back({{"path", path},
                         {"valid", errors.empty()},
                         {rk::schema_version, report[rk::schema_version]},
                         {"errors", errors}});
      continue;
    }
    if (errors.empty()) {
      if (!a.has("--quiet"))
        fmt::print("{}: valid (schema version {})\n", path, report[rk::schema_version].get<int>());
      continue;
    }
    for (const auto& e : errors) fmt::print(stderr, "{}: {}\n", path, e);
  }
  if (a.has("--json"))
    fmt::print("{}\n", results.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  return status;
}

}  // namespace trainmeter::cli
