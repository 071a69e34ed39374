// Numbers a person reads, in adaptive units: 12.3 g CO2e rather than 0.0123 kg, 2.50 kWh rather
// than 9000000 J. Every human-text output (summary, HTML, compare, forecast, estimate, recompute)
// formats through these, so a figure reads the same everywhere. JSON output keeps the report's
// own units (the key names say them); these are for text only.
//
// Rules: `digits` significant digits (default 3, trailing zeros kept: "1.50 s" says the figure is
// known to three digits); the unit is the largest of the ladder in which the magnitude is >= 1,
// chosen after rounding (999.96 g is "1.00 kg", never "1.00e+03 g"); the smallest unit of a
// ladder takes anything below it ("0.500 ns"); 0 is "0" with the ladder's base unit ("0 J");
// negative values keep their sign ("-1.20 kWh"); NaN is "n/a", infinities "inf"/"-inf" with the
// base unit. Byte counts below 1 KiB are whole ("512 B"). Thread-safe, no locale.
#pragma once

#include <string>
#include <string_view>

namespace trainmeter::detail {

/// Mass from kilograms: mg, g, kg, t ("12.3 g").
std::string format_mass_kg(double kg, int digits = 3);
/// A CO2-equivalent mass from kilograms: format_mass_kg() + " CO2e" ("12.3 g CO2e").
std::string format_co2e_kg(double kg, int digits = 3);
/// Energy from joules: mJ, J, kJ (below 1 Wh), Wh, kWh, MWh ("2.50 kWh").
std::string format_energy_j(double joules, int digits = 3);
/// Duration from nanoseconds: ns, µs, ms, s, min, h ("1.50 ms"; "2.50 min" is 150 s).
std::string format_duration_ns(double ns, int digits = 3);
/// Duration from seconds (format_duration_ns of s x 1e9).
std::string format_duration_s(double seconds, int digits = 3);
/// Bytes, binary prefixes: B, KiB, MiB, GiB, TiB ("1.50 GiB").
std::string format_bytes(double bytes, int digits = 3);
/// Power from watts: mW, W, kW, MW ("250 W").
std::string format_power_w(double watts, int digits = 3);

/// A value in one of the report's units, adapted when the unit has a ladder above: "ns", "s",
/// "J", "kg" (mass), "kg CO2e", "bytes", "W". Any other unit: the value with `digits`
/// significant digits and the unit after a space ("12.3 samples/s"); an empty unit, the bare
/// number.
std::string format_in_unit(double value, std::string_view unit, int digits = 3);

}  // namespace trainmeter::detail
