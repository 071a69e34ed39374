// The arithmetic of carbon and cost, in one place so that the carbon component and the CLI's
// estimate, forecast and recompute commands cannot disagree. Every constant is cited in
// docs/methodology.md (section "Carbon and cost") and written into the reports that use it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

inline constexpr double kJoulesPerKwh = 3.6e6;
/// Average passenger car in Europe, g CO2 per km: Green Algorithms reference values
/// (data/latest/referenceValues.csv "passengerCar_EU_perkm", citing UK GHG conversion factors
/// 2019 and Atmospheric Environment doi:10.1016/j.atmosenv.2018.10.017).
inline constexpr double kCarGPerKm = 175.0;
inline constexpr const char* kCarSource =
    "Green Algorithms reference value passengerCar_EU_perkm (UK GHG conversion factors 2019)";
/// Lifetime emissions of an average American car including fuel, 126,000 lb CO2e (Strubell,
/// Ganesh, McCallum 2019, "Energy and Policy Considerations for Deep Learning in NLP", Table 1).
inline constexpr double kCarLifetimeLb = 126000.0;
inline constexpr double kKgPerLb = 0.45359237;  // exact, by the international pound definition
inline constexpr double kCarLifetimeKg = kCarLifetimeLb * kKgPerLb;
inline constexpr const char* kCarLifetimeSource =
    "Strubell, Ganesh, McCallum 2019, Energy and Policy Considerations for Deep Learning in NLP "
    "(ACL 2019, arXiv:1906.02243), Table 1: car, avg incl. fuel, 1 lifetime = 126,000 lb CO2e";

/// kg CO2e = energy_kwh x pue x g_per_kwh / 1000. `energy_kwh` is the energy measured at the
/// machine (before PUE).
double carbon_kg(double energy_kwh, double pue, double g_per_kwh);

/// Everyday equivalents of `co2e_kg` (nullopt: not measured, every figure null) with the
/// constants used, so a reader can recompute them: {car_km, car_g_per_km, car_source,
/// car_lifetime_fraction, car_lifetime_kg, car_lifetime_lb, car_lifetime_source}.
nlohmann::json equivalents_json(std::optional<double> co2e_kg);

/// Inputs of the cost model. `energy_kwh` is the energy billed (after PUE).
struct CostInputs {
  std::optional<double> price_per_hour;        ///< instance price, currency per hour
  std::optional<double> energy_price_per_kwh;  ///< currency per kWh
  std::string currency = "USD";
  std::optional<double> duration_h;  ///< run duration, hours
  std::optional<double> energy_kwh;  ///< energy billed, kWh
};
struct CostResult {
  std::optional<double> compute;  ///< price_per_hour x duration_h
  std::optional<double> energy;   ///< energy_price_per_kwh x energy_kwh
  std::optional<double> total;    ///< sum of the priced parts; null when a priced part is unknown
};
/// compute = price_per_hour x duration_h; energy = energy_price_per_kwh x energy_kwh; a part
/// without its price is absent (nullopt) and does not make the total unknown; a part with a price
/// but without its quantity is unknown and so is the total.
CostResult compute_cost(const CostInputs& in);
/// The report's cost section, or null when neither price is given:
/// {compute, energy, total, currency, inputs: {price_per_hour, energy_price_per_kwh, duration_h,
/// energy_kwh}, formula}.
nlohmann::json cost_json(const CostInputs& in);

/// Green Algorithms / Strubell et al. style estimate: kWh = pue x hours x (cpu_w + ram_w +
/// devices x device_w) / 1000.
double estimate_energy_kwh(double hours, double pue, double cpu_w, double ram_w, double devices,
                           double device_w);

}  // namespace trainmeter::detail
