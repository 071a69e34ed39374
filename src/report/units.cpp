#include "report/units.hpp"

#include <cmath>
#include <initializer_list>

#include <fmt/format.h>

#include "base/report_keys.hpp"

namespace trainmeter::detail {

namespace {

struct Step {
  double scale;  // the unit's size in the input unit
  const char* name;
};

// Decimals that give `digits` significant digits for a magnitude x > 0 (never negative: a value
// with more integer digits than `digits` is printed whole, never in exponent form).
int decimals_for(double x, int digits) {
  const int p = digits - 1 - static_cast<int>(std::floor(std::log10(x)));
  return p > 0 ? p : 0;
}

double round_to(double x, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(x * f) / f;
}

// x > 0 rounded to `digits` significant digits, and the decimals to print it with (recomputed
// after rounding: 9.996 rounds to 10.0, one decimal fewer).
std::string significant(double x, int digits) {
  double r = round_to(x, decimals_for(x, digits));
  if (!(r > 0) || !std::isfinite(r)) r = x;  // beyond what pow() can scale: keep the value
  return fmt::format("{:.{}f}", r, decimals_for(r, digits));
}

std::string adaptive(double v, std::initializer_list<Step> ladder, const char* zero_unit,
                     int digits, bool whole_base = false) {
  if (digits < 1) digits = 1;
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return fmt::format("{} {}", v < 0 ? "-inf" : "inf", zero_unit);
  if (v == 0) return fmt::format("0 {}", zero_unit);
  const char* sign = v < 0 ? "-" : "";
  const double m = std::fabs(v);
  // The largest unit in which the value, once rounded, is at least 1.
  const Step* chosen = ladder.begin();
  for (auto it = ladder.end(); it != ladder.begin();) {
    --it;
    const double x = m / it->scale;
    if (round_to(x, decimals_for(x, digits)) >= 1.0) {
      chosen = it;
      break;
    }
  }
  const double x = m / chosen->scale;
  if (whole_base && chosen == ladder.begin())
    return fmt::format("{}{:.0f} {}", sign, std::round(x), chosen->name);
  return fmt::format("{}{} {}", sign, significant(x, digits), chosen->name);
}

}  // namespace

std::string format_mass_kg(double kg, int digits) {
  return adaptive(kg, {{1e-6, "mg"}, {1e-3, "g"}, {1.0, "kg"}, {1e3, "t"}}, "kg", digits);
}

std::string format_co2e_kg(double kg, int digits) {
  if (std::isnan(kg)) return "n/a";
  return format_mass_kg(kg, digits) + " CO2e";
}

std::string format_energy_j(double joules, int digits) {
  // kJ only up to 1 Wh: from there on, the watt-hours energy is billed and compared in.
  return adaptive(
      joules,
      {{1e-3, "mJ"}, {1.0, "J"}, {1e3, "kJ"}, {3.6e3, "Wh"}, {3.6e6, "kWh"}, {3.6e9, "MWh"}}, "J",
      digits);
}

std::string format_duration_ns(double ns, int digits) {
  return adaptive(
      ns, {{1.0, "ns"}, {1e3, "µs"}, {1e6, "ms"}, {1e9, "s"}, {60e9, rk::min}, {3600e9, "h"}}, "s",
      digits);
}

std::string format_duration_s(double seconds, int digits) {
  return format_duration_ns(seconds * 1e9, digits);
}

std::string format_bytes(double bytes, int digits) {
  return adaptive(bytes,
                  {{1.0, "B"},
                   {1024.0, "KiB"},
                   {1024.0 * 1024, "MiB"},
                   {1024.0 * 1024 * 1024, "GiB"},
                   {1024.0 * 1024 * 1024 * 1024, "TiB"}},
                  "B", digits, /*whole_base=*/true);
}

std::string format_power_w(double watts, int digits) {
  return adaptive(watts, {{1e-3, "mW"}, {1.0, "W"}, {1e3, "kW"}, {1e6, "MW"}}, "W", digits);
}

std::string format_in_unit(double value, std::string_view unit, int digits) {
  if (unit == "ns") return format_duration_ns(value, digits);
  if (unit == "s") return format_duration_s(value, digits);
  if (unit == "J") return format_energy_j(value, digits);
  if (unit == "kg") return format_mass_kg(value, digits);
  if (unit == "kg CO2e") return format_co2e_kg(value, digits);
  if (unit == "bytes" || unit == "B") return format_bytes(value, digits);
  if (unit == "W") return format_power_w(value, digits);
  if (digits < 1) digits = 1;
  std::string number;
  if (std::isnan(value))
    return "n/a";
  else if (std::isinf(value))
    number = value < 0 ? "-inf" : "inf";
  else if (value == 0)
    number = "0";
  else
    number = (value < 0 ? "-" : "") + significant(std::fabs(value), digits);
  return unit.empty() ? number : number + " " + std::string(unit);
}

}  // namespace trainmeter::detail
