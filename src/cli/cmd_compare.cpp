#include <fmt/format.h>

#include "cli/cli.hpp"
#include "export/compare.hpp"
#include "report/schema.hpp"

namespace trainmeter::cli {

int cmd_compare(const std::vector<std::string>& args) {
  Args a("compare", "A.json B.json [--json] [--phase NAME] [--fail-if-slower PCT]");
  a.flag("--json", "print the comparison as JSON");
  a.option("--phase", "phase to compare (default: train, else the phase with most steps)");
  a.option("--fail-if-slower",
           "exit 1 when B's median step time is more than PCT percent slower "
           "than A's and the confidence interval excludes no change");
  a.option("--resamples", "bootstrap resamples (default 2000)");
  if (!a.parse(args, 2, 2)) return kExitOk;
  nlohmann::json reports[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& path = a.positional()[i];
    reports[i] = load_report(path);
    const auto errors = detail::validate_schema(reports[i], detail::report_schema(), 1);
    if (!errors.empty())
      throw CliError{
          fmt::format("{}: not a valid report: {} (see trainmeter validate)", path, errors[0])};
  }
  detail::CompareOptions options;
  options.phase = a.get("--phase");
  if (auto n = a.integer("--resamples")) {
    if (*n < 100 || *n > 1000000)
      throw CliError{fmt::format("--resamples: {} is out of range; accepted: 100 to 1000000", *n)};
    options.resamples = static_cast<int>(*n);
  }
  const std::optional<double> pct = a.number("--fail-if-slower");
  if (pct && *pct < 0)
    throw CliError{
        fmt::format("--fail-if-slower: {} is negative; accepted: a percentage >= 0", *pct)};
  if (!options.phase.empty() && !reports[0]["phases"].contains(options.phase))
    throw CliError{fmt::format("{}: no phase '{}'", a.positional()[0], options.phase)};
  nlohmann::json c = detail::compare_reports(reports[0], reports[1], options);

  int code = kExitOk;
  if (pct) {
    // The gate: B slower than A by more than PCT (median ratio), and the slowdown significant
    // (CI entirely above 1). Without retained steps, only the reports' p50 ratio is available.
    const nlohmann::json& st = c["step_time"];
    const double limit = 1.0 + *pct / 100.0;
    bool failed = false;
    std::string basis;
    if (st["median_ratio"].is_number() && st["ci_low"].is_number()) {
      failed = st["median_ratio"].get<double>() > limit && st["ci_low"].get<double>() > 1.0;
      basis = "median ratio and bootstrap CI of the retained steps";
    } else if (c["metrics"]["step_time_p50"]["ratio"].is_number()) {
      failed = c["metrics"]["step_time_p50"]["ratio"].get<double>() > limit;
      basis = "the reports' p50 ratio (no retained steps, no CI)";
    } else {
      throw CliError{fmt::format("--fail-if-slower: no step time for phase '{}' in both reports",
                                 c.value("phase", std::string()))};
    }
    c["gate"] = {{"fail_if_slower_pct", *pct}, {"failed", failed}, {"basis", basis}};
    if (failed) code = kExitFailed;
  }
  if (a.has("--json"))
    fmt::print("{}\n", c.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  else {
    fmt::print("{}", detail::render_comparison(c));
    if (c.contains("gate"))
      fmt::print("gate --fail-if-slower {}: {}\n", *pct,
                 c["gate"]["failed"].get<bool>() ? "FAILED" : "passed");
  }
  return code;
}

}  // namespace trainmeter::cli
