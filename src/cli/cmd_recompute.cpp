// `trainmeter recompute`: the same run under other assumptions (grid intensity, PUE, prices),
// from the energy it recorded. Rewrites carbon, cost and energy.pue/total_kwh_with_pue with the
// function the library itself uses, and records what the report said before.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "base/report_keys.hpp"
#include "carbon/settings.hpp"
#include "cli/cli.hpp"
#include "report/json_io.hpp"
#include "report/schema.hpp"
#include "report/units.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::cli {
namespace {

using nlohmann::json;

std::optional<double> num(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number()) return std::nullopt;
  return obj[key].get<double>();
}

std::optional<std::string> text(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return std::nullopt;
  return obj[key].get<std::string>();
}

// The intensity the report was written with, so that changing only the PUE keeps it.
detail::IntensityChoice intensity_from_report(const json& carbon) {
  detail::IntensityChoice c;
  const auto g = num(carbon, rk::intensity_g_per_kwh);
  if (!g) return c;  // no carbon section: world default
  c.g_per_kwh = *g;
  c.source = text(carbon, rk::intensity_source).value_or("explicit");
  c.region = text(carbon, rk::region);
  c.region_name = text(carbon, rk::region_name);
  c.data_source = text(carbon, rk::data_source).value_or("the original report");
  c.data_year.reset();
  if (carbon.contains(rk::data_year) && carbon[rk::data_year].is_number_integer()) {
    c.data_year = carbon[rk::data_year].get<int>();
  }
  return c;
}

std::string kg_text(const json& carbon) {
  const auto kg = num(carbon, rk::co2e_kg);
  return kg ? detail::format_co2e_kg(*kg) : std::string("not measured");
}

}  // namespace

int cmd_recompute(const std::vector<std::string>& args) {
  Args a("recompute",
         "REPORT.json [--country CC | --cloud-region P:R | --carbon-intensity G | "
         "--carbon-intensity-file CSV] "
         "[--pue P] [--price-per-hour X] [--energy-price-per-kwh X] [-o OUT.json] [--json]");
  a.option("--country", "ISO 3166 alpha-2 or alpha-3 country code")
      .option("--cloud-region", "cloud region provider:region, e.g. azure:westeurope", "--region")
      .option("--carbon-intensity", "grid intensity, g CO2e/kWh", "--intensity")
      .option("--carbon-intensity-file", "CSV time series timestamp_utc,g_per_kwh",
              "--intensity-file")
      .option("--pue", "power usage effectiveness, >= 1 (default: the report's)")
      .option("--price-per-hour", "instance price per hour (default: the report's)")
      .option("--energy-price-per-kwh", "energy price per kWh (default: the report's)")
      .option("--currency", "currency of the prices (default: the report's, else USD)")
      .option("--out", "write the recomputed report here (temp file + rename)", "-o")
      .flag("--json", "print the new carbon and cost sections as JSON");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string path = a.positional()[0];
  bool changes = false;
  for (const char* o :
       {"--country", "--cloud-region", "--carbon-intensity", "--carbon-intensity-file", "--pue",
        "--price-per-hour", "--energy-price-per-kwh", "--currency"})
    changes = changes || a.has(o);
  if (!changes)
    throw CliError{
        "nothing to recompute: give at least one of --country, --cloud-region, "
        "--carbon-intensity, --carbon-intensity-file, --pue, --price-per-hour, "
        "--energy-price-per-kwh, --currency"};
  if (a.has("--out")) {
    if (a.get("--out").empty()) throw CliError{"--out (-o) needs a file path"};
    std::vector<std::string> inputs = {path};
    if (a.has("--carbon-intensity-file")) inputs.push_back(a.get("--carbon-intensity-file"));
    refuse_output_over_input(a.get("--out"), inputs);
  }
  json report = load_valid_report(path);
  const json original_carbon = report.contains(rk::carbon) ? report[rk::carbon] : json();
  const json original_cost = report.contains(rk::cost) ? report[rk::cost] : json();
  const json energy = report.contains(rk::energy) ? report[rk::energy] : json();

  const int given = a.has("--country") + a.has("--cloud-region") + a.has("--carbon-intensity") +
                    a.has("--carbon-intensity-file");
  if (given > 1)
    throw CliError{
        "give at most one of --country, --cloud-region, --carbon-intensity, "
        "--carbon-intensity-file"};

  detail::CarbonSettings s;
  try {
    if (a.has("--carbon-intensity")) {
      s.intensity = detail::intensity_from_value(
          *a.number_in("--carbon-intensity", "carbon_intensity"), "--carbon-intensity");
    } else if (a.has("--country")) {
      s.intensity = detail::intensity_from_country(a.get("--country"), "--country");
    } else if (a.has("--cloud-region")) {
      s.intensity = detail::intensity_from_region(a.get("--cloud-region"), "--cloud-region");
    } else if (a.has("--carbon-intensity-file")) {
      s.intensity = detail::intensity_from_series(
          detail::load_intensity_series(a.get("--carbon-intensity-file")));
    } else {
      s.intensity = intensity_from_report(original_carbon);
    }
    s.pue =
        a.number_in("--pue", rk::pue)
            .value_or(num(energy, rk::pue).value_or(num(original_carbon, rk::pue).value_or(1.0)));
    detail::validate_pue(s.pue, "--pue");
  } catch (const Error& e) {
    throw CliError{e.what()};
  }
  const json inputs = original_cost.is_object() && original_cost.contains(rk::inputs)
                          ? original_cost[rk::inputs]
                          : json();
  s.price_per_hour = a.has("--price-per-hour") ? a.number_in("--price-per-hour", rk::price_per_hour)
                                               : num(inputs, rk::price_per_hour);
  s.energy_price_per_kwh = a.has("--energy-price-per-kwh")
                               ? a.number_in("--energy-price-per-kwh", rk::energy_price_per_kwh)
                               : num(inputs, rk::energy_price_per_kwh);
  s.currency = a.get("--currency", text(original_cost, rk::currency).value_or("USD"));
  if (s.currency.empty()) throw CliError{"--currency must not be empty"};

  detail::Diagnostics diagnostics;
  detail::apply_carbon(report, s, std::nullopt, &diagnostics);
  // What the library would note in a live run (a stale or short series) goes into the new
  // report's diagnostics and, so that it is not missed, to stderr.
  for (const json& d : diagnostics.to_json()) {
    fmt::print(stderr, "trainmeter recompute: warning: {}\n", d[rk::message].get<std::string>());
    if (!report[rk::diagnostics].is_array()) report[rk::diagnostics] = json::array();
    report[rk::diagnostics].push_back(d);
  }
  const bool new_intensity = given > 0;
  if (!new_intensity && original_carbon.is_object() && original_carbon.contains(rk::time_series)) {
    // The recorded weighted mean is kept; so is the description of how it was obtained.
    report[rk::carbon][rk::time_series] = original_carbon[rk::time_series];
  }
  report[rk::carbon][rk::recomputed] = {
      {rk::by, "trainmeter recompute"},
      {rk::from, path},
      {rk::original_intensity_g_per_kwh,
       original_carbon.is_object() && num(original_carbon, rk::intensity_g_per_kwh)
           ? json(*num(original_carbon, rk::intensity_g_per_kwh))
           : json(nullptr)},
      {rk::original_intensity_source,
       original_carbon.is_object() && text(original_carbon, rk::intensity_source)
           ? json(*text(original_carbon, rk::intensity_source))
           : json(nullptr)},
      {rk::original_pue, num(energy, rk::pue)
                             ? json(*num(energy, rk::pue))
                             : (num(original_carbon, rk::pue) ? json(*num(original_carbon, rk::pue))
                                                              : json(nullptr))},
      {rk::original_co2e_kg, num(original_carbon, rk::co2e_kg)
                                 ? json(*num(original_carbon, rk::co2e_kg))
                                 : json(nullptr)}};

  // Checked whether written or printed: figures from an invalid document are not shown either.
  if (const auto errors = detail::validate_schema(report, detail::report_schema());
      !errors.empty()) {
    throw CliError{
        fmt::format("{}: the recomputed report would not be valid: {}", path, errors.front())};
  }
  if (a.has("--out")) {
    const std::string out = a.get("--out");
    const std::string err = detail::write_file_atomic(out, detail::dump_report(report));
    if (!err.empty()) throw CliError{err};
  }
  if (a.has("--json")) {
    fmt::print("{}\n",
               json{{rk::carbon, report[rk::carbon]}, {rk::cost, report[rk::cost]}}.dump(2));
    return kExitOk;
  }
  const json& c = report[rk::carbon];
  fmt::print("{}: {} -> {}\n", path, kg_text(original_carbon), kg_text(c));
  std::string where = c[rk::intensity_source].get<std::string>();
  if (c[rk::region].is_string()) where += " " + c[rk::region].get<std::string>();
  fmt::print("  intensity {:.4g} g/kWh ({}), PUE {}\n", c[rk::intensity_g_per_kwh].get<double>(),
             where, s.pue);
  if (report[rk::cost].is_object() && report[rk::cost][rk::total].is_number()) {
    fmt::print("  cost {:.4g} {}\n", report[rk::cost][rk::total].get<double>(), s.currency);
  }
  if (a.has("--out")) fmt::print("  written to {}\n", a.get("--out"));
  return kExitOk;
}

}  // namespace trainmeter::cli
