#include <fmt/format.h>

#include "carbon/intensity.hpp"
#include "cli/cli.hpp"
#include "report/findings.hpp"

namespace trainmeter::cli {

namespace {
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= text.size()) {
    const std::size_t comma = text.find(',', from);
    const std::string item =
        text.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  return out;
}
}  // namespace

int cmd_advise(const std::vector<std::string>& args) {
  Args a("advise",
         "REPORT.json [--json] [--regions R1,R2,...] [--carbon-intensity-file FILE] "
         "[--prices-file FILE]");
  a.flag("--json", "print the findings section as JSON ({\"items\", \"not_checked\"})");
  a.option("--regions",
           "candidates for the carbon what-if: provider:region or country codes, comma-separated "
           "(default: every bundled cloud region)");
  a.option("--carbon-intensity-file",
           "an intensity time series (CSV timestamp_utc,g_per_kwh): the cleanest window of the "
           "run's duration",
           "--intensity-file");
  a.option("--prices-file",
           "candidate electricity prices for the cost what-if: TSV code, name, price_per_kwh, "
           "currency, year, source (default: the bundled table, data/electricity_prices.tsv)");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string& path = a.positional()[0];
  const nlohmann::json report = load_valid_report(path);
  detail::FindingsOptions options;
  if (a.has("--regions")) {
    options.regions = split_list(a.get("--regions"));
    if (options.regions.empty()) throw CliError{"--regions: empty list"};
  }
  if (a.has("--carbon-intensity-file")) {
    try {
      options.series = detail::load_intensity_series(a.get("--carbon-intensity-file"));
    } catch (const std::exception& e) {
      throw CliError{"--carbon-intensity-file: " + without_prefix(e.what())};
    }
  }
  if (a.has("--prices-file")) {
    try {
      options.prices = detail::load_price_table(a.get("--prices-file"), "--prices-file");
    } catch (const std::exception& e) {
      throw CliError{without_prefix(e.what())};
    }
  }
  // A report written with findings keeps them unless options ask for a different what-if.
  const bool defaults = options.regions.empty() && !options.series && options.prices.empty();
  const nlohmann::json section =
      defaults ? detail::stored_or_computed_findings(report) : detail::findings(report, options);
  if (a.has("--json")) {
    fmt::print("{}\n", section.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  fmt::print("{}", detail::render_findings(section));
  return kExitOk;
}

}  // namespace trainmeter::cli
