#include <fmt/format.h>

#include "cli/cli.hpp"
#include "report/schema.hpp"
#include "report/summary.hpp"

namespace trainmeter::cli {

int cmd_summary(const std::vector<std::string>& args) {
  Args a("summary", "REPORT.json [--json]");
  a.flag("--json", "print the summary's figures as JSON (units in the key names; null: n/a)");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string& path = a.positional()[0];
  const nlohmann::json report = load_valid_report(path);
  if (a.has("--json")) {
    nlohmann::json out = detail::summary_json(report);
    out["report"] = path;
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  fmt::print("{}", detail::render_summary(report));
  return kExitOk;
}

}  // namespace trainmeter::cli
