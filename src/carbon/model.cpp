#include "carbon/model.hpp"
#include "base/json_value.hpp"

#include <cmath>

#include "base/report_keys.hpp"

namespace trainmeter::detail {

double carbon_kg(double energy_kwh, double pue, double g_per_kwh) {
  return energy_kwh * pue * g_per_kwh / 1000.0;
}

nlohmann::json equivalents_json(std::optional<double> co2e_kg) {
  nlohmann::json j;
  j[rk::car_km] =
      json_or_null(co2e_kg ? std::optional<double>(*co2e_kg * 1000.0 / kCarGPerKm) : std::nullopt);
  j[rk::car_g_per_km] = kCarGPerKm;
  j[rk::car_source] = kCarSource;
  j[rk::car_lifetime_fraction] =
      json_or_null(co2e_kg ? std::optional<double>(*co2e_kg / kCarLifetimeKg) : std::nullopt);
  j[rk::car_lifetime_kg] = kCarLifetimeKg;
  j[rk::car_lifetime_lb] = kCarLifetimeLb;
  j[rk::car_lifetime_source] = kCarLifetimeSource;
  return j;
}

CostResult compute_cost(const CostInputs& in) {
  CostResult r;
  bool unknown = false;
  bool any = false;
  double total = 0;
  if (in.price_per_hour) {
    if (in.duration_h) {
      r.compute = *in.price_per_hour * *in.duration_h;
      total += *r.compute;
      any = true;
    } else {
      unknown = true;
    }
  }
  if (in.energy_price_per_kwh) {
    if (in.energy_kwh) {
      r.energy = *in.energy_price_per_kwh * *in.energy_kwh;
      total += *r.energy;
      any = true;
    } else {
      unknown = true;
    }
  }
  if (any && !unknown) r.total = total;
  return r;
}

nlohmann::json cost_json(const CostInputs& in) {
  if (!in.price_per_hour && !in.energy_price_per_kwh) return nullptr;
  const CostResult r = compute_cost(in);
  nlohmann::json j;
  j[rk::compute] = json_or_null(r.compute);
  j[rk::energy] = json_or_null(r.energy);
  j[rk::total] = json_or_null(r.total);
  j[rk::currency] = in.currency;
  j[rk::inputs] = {{rk::price_per_hour, json_or_null(in.price_per_hour)},
                   {rk::energy_price_per_kwh, json_or_null(in.energy_price_per_kwh)},
                   {rk::duration_h, json_or_null(in.duration_h)},
                   {rk::energy_kwh, json_or_null(in.energy_kwh)}};
  j[rk::formula] =
      "compute = price_per_hour * duration_h; energy = energy_price_per_kwh * energy_kwh "
      "(energy_kwh includes PUE); total = compute + energy (parts without a price omitted)";
  return j;
}

double estimate_energy_kwh(double hours, double pue, double cpu_w, double ram_w, double devices,
                           double device_w) {
  return pue * hours * (cpu_w + ram_w + devices * device_w) / 1000.0;
}

}  // namespace trainmeter::detail
