// `trainmeter estimate`: the calculator people use before a run (Green Algorithms, ML CO2
// Impact): energy = PUE x hours x (CPU W + RAM W + devices x device W) / 1000, then carbon and
// cost with the same functions the library uses for measured runs.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "carbon/model.hpp"
#include "carbon/settings.hpp"
#include "cli/cli.hpp"
#include "energy/tdp.hpp"
#include "report/units.hpp"
#include "trainmeter/config.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::cli {
namespace {

using nlohmann::json;

// Powers in watts: from 0 (none) to the key table's bound for a CPU's TDP.
double watts(const Args& a, const std::string& name) {
  return a.number_in(name, "cpu_tdp_w", 0.0).value_or(0.0);
}

// Beyond a million hours (114 years) a planned run is a typo; the bound keeps every figure
// finite.
constexpr double kMaxHours = 1e6;

// The location options, at most one; errors from the tables become one-line CLI errors.
detail::IntensityChoice intensity_from_options(const Args& a) {
  int given = a.has("--carbon-intensity") + a.has("--country") + a.has("--cloud-region");
  if (given > 1)
    throw CliError{"give at most one of --carbon-intensity, --country, --cloud-region"};
  try {
    if (a.has("--carbon-intensity"))
      return detail::intensity_from_value(*a.number("--carbon-intensity"), "--carbon-intensity");
    if (a.has("--country")) return detail::intensity_from_country(a.get("--country"), "--country");
    if (a.has("--cloud-region"))
      return detail::intensity_from_region(a.get("--cloud-region"), "--cloud-region");
  } catch (const Error& e) {
    throw CliError{e.what()};
  }
  return detail::IntensityChoice{};
}

}  // namespace

int cmd_estimate(const std::vector<std::string>& args) {
  Args a("estimate",
         "--hours H (--device-power-w W | --gpu MODEL | --cpu-power-w W | --cpu MODEL) [options]");
  a.option("--hours", "run duration in hours (required)")
      .option("--devices", "number of accelerators (default 1 with --device-power-w or --gpu)")
      .option("--device-power-w", "average power of one accelerator, watts")
      .option("--gpu", "accelerator model looked up in the GPU TDP table, e.g. A100, 'H100 SXM'")
      .option("--cpu-power-w", "average CPU power, watts")
      .option("--cpu", "CPU model looked up in the CPU TDP table")
      .option("--ram-power-w", "average memory power, watts (default 0)")
      .option("--pue", "data-centre power usage effectiveness, >= 1 (default 1.0)")
      .option("--carbon-intensity", "grid intensity, g CO2e/kWh", "--intensity")
      .option("--country", "ISO 3166 alpha-2 or alpha-3 country code")
      .option("--cloud-region", "cloud region provider:region, e.g. gcp:europe-west9", "--region")
      .option("--price-per-hour", "instance price per hour, USD")
      .option("--energy-price-per-kwh", "energy price per kWh, USD")
      .flag("--json", "print JSON {energy_kwh, co2e_kg, cost_usd, inputs}");
  if (!a.parse(args, 0, 0)) return kExitOk;

  const auto hours = a.number("--hours");
  if (!hours) throw CliError{"--hours is required (run duration in hours)"};
  if (!(*hours > 0) || *hours > kMaxHours)
    throw CliError{
        fmt::format("--hours {}: accepted: a number above 0 and at most {}", *hours, kMaxHours)};
  if (a.has("--gpu") && a.has("--device-power-w")) {
    throw CliError{"give either --gpu MODEL or --device-power-w W, not both"};
  }
  if (a.has("--cpu") && a.has("--cpu-power-w")) {
    throw CliError{"give either --cpu MODEL or --cpu-power-w W, not both"};
  }

  json inputs;
  double device_w = watts(a, "--device-power-w");
  inputs["device_power_source"] =
      a.has("--device-power-w") ? json("--device-power-w") : json(nullptr);
  if (a.has("--gpu")) {
    const auto match = detail::find_gpu_tdp(a.get("--gpu"));
    if (!match) {
      throw CliError{fmt::format(
          "--gpu '{}': not in the GPU TDP table (data/gpu_tdp.tsv); give --device-power-w W",
          a.get("--gpu"))};
    }
    device_w = match->tdp_w;
    inputs["gpu_model"] = match->model;
    inputs["device_power_source"] = fmt::format("TDP of {} ({})", match->model, match->source);
  }
  double cpu_w = watts(a, "--cpu-power-w");
  inputs["cpu_power_source"] = a.has("--cpu-power-w") ? json("--cpu-power-w") : json(nullptr);
  if (a.has("--cpu")) {
    const auto match = detail::find_cpu_tdp(a.get("--cpu"));
    if (!match) {
      throw CliError{fmt::format(
          "--cpu '{}': not in the CPU TDP table (data/cpu_tdp.tsv); give --cpu-power-w W",
          a.get("--cpu"))};
    }
    cpu_w = match->tdp_w;
    inputs[rk::cpu_model] = match->model;
    inputs["cpu_power_source"] = fmt::format("TDP of {} ({})", match->model, match->source);
  }
  const bool has_device = a.has("--gpu") || a.has("--device-power-w");
  double devices = has_device ? 1.0 : 0.0;
  if (const auto n = a.integer("--devices")) {
    // As many devices as a run can have ranks (the world_size key's bound).
    const double most = config_key(rk::world_size).max_value;
    if (*n < 0 || double(*n) > most)
      throw CliError{fmt::format("--devices {}: accepted: an integer from 0 to {}", *n, most)};
    if (*n > 0 && !has_device) throw CliError{"--devices needs --device-power-w W or --gpu MODEL"};
    devices = double(*n);
  }
  const double ram_w = watts(a, "--ram-power-w");
  if (cpu_w + ram_w + devices * device_w <= 0) {
    throw CliError{
        "no power to estimate from: give --device-power-w, --gpu, --cpu-power-w, --cpu or "
        "--ram-power-w (watts above 0)"};
  }
  const double pue = a.number_in("--pue", rk::pue).value_or(1.0);
  const auto price_per_hour = a.number_in("--price-per-hour", rk::price_per_hour);
  const auto energy_price = a.number_in("--energy-price-per-kwh", rk::energy_price_per_kwh);
  const detail::IntensityChoice intensity = intensity_from_options(a);

  const double energy_kwh =
      detail::estimate_energy_kwh(*hours, pue, cpu_w, ram_w, devices, device_w);
  // estimate_energy_kwh already includes PUE, so carbon uses PUE 1 here.
  const double co2e_kg = detail::carbon_kg(energy_kwh, 1.0, intensity.g_per_kwh);
  detail::CostInputs cost_in;
  cost_in.price_per_hour = price_per_hour;
  cost_in.energy_price_per_kwh = energy_price;
  cost_in.duration_h = *hours;
  cost_in.energy_kwh = energy_kwh;
  const detail::CostResult cost = detail::compute_cost(cost_in);

  inputs["hours"] = *hours;
  inputs["devices"] = static_cast<long long>(devices);
  inputs["device_power_w"] = device_w;
  inputs["cpu_power_w"] = cpu_w;
  inputs["ram_power_w"] = ram_w;
  inputs[rk::pue] = pue;
  inputs[rk::intensity_g_per_kwh] = intensity.g_per_kwh;
  inputs[rk::intensity_source] = intensity.source;
  inputs[rk::region] = detail::json_or_null(intensity.region);
  inputs[rk::region_name] = detail::json_or_null(intensity.region_name);
  inputs["intensity_data_source"] = intensity.data_source;
  inputs["intensity_data_year"] = intensity.data_year ? json(*intensity.data_year) : json(nullptr);
  inputs[rk::price_per_hour] = detail::json_or_null(price_per_hour);
  inputs[rk::energy_price_per_kwh] = detail::json_or_null(energy_price);

  if (a.has("--json")) {
    json out;
    out[rk::energy_kwh] = energy_kwh;
    out[rk::co2e_kg] = co2e_kg;
    out["cost_usd"] = detail::json_or_null(cost.total);
    out[rk::equivalents] = detail::equivalents_json(co2e_kg);
    out[rk::inputs] = std::move(inputs);
    out[rk::formula] =
        "energy_kwh = pue * hours * (cpu_power_w + ram_power_w + devices * device_power_w) / 1000; "
        "co2e_kg = energy_kwh * intensity_g_per_kwh / 1000; cost_usd = price_per_hour * hours + "
        "energy_price_per_kwh * energy_kwh";
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }

  fmt::print("Energy  {} = PUE {} x {} h x ({} W CPU + {} W RAM + {} x {} W devices)\n",
             detail::format_energy_j(energy_kwh * 3.6e6), pue, *hours, cpu_w, ram_w, devices,
             device_w);
  std::string where = intensity.source;
  if (intensity.region_name) where += ", " + *intensity.region_name;
  fmt::print("Carbon  {} at {:.4g} g/kWh ({}; {}{})\n", detail::format_co2e_kg(co2e_kg),
             intensity.g_per_kwh, where, intensity.data_source,
             intensity.data_year ? fmt::format(", {}", *intensity.data_year) : std::string());
  fmt::print(
      "        = {:.4g} km by an average car ({} g/km); {:.3g}% of a car's lifetime emissions\n",
      co2e_kg * 1000.0 / detail::kCarGPerKm, detail::kCarGPerKm,
      100.0 * co2e_kg / detail::kCarLifetimeKg);
  if (cost.total) {
    fmt::print("Cost    {:.2f} USD", *cost.total);
    if (cost.compute) fmt::print(" = {} USD/h x {} h", *price_per_hour, *hours);
    if (cost.energy)
      fmt::print("{} {} USD/kWh x {}", cost.compute ? " +" : " =", *energy_price,
                 detail::format_energy_j(energy_kwh * 3.6e6));
    fmt::print("\n");
  }
  return kExitOk;
}

}  // namespace trainmeter::cli
