// Adaptive units: literal strings for every ladder, the rounding that moves a value up a unit,
// signs, zero, NaN and infinities, and the unit names the report uses.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include "report/units.hpp"

namespace d = trainmeter::detail;

TEST_CASE("units: mass and CO2e", "[report][units]") {
  CHECK(d::format_mass_kg(0.0123) == "12.3 g");
  CHECK(d::format_mass_kg(0.00034) == "340 mg");
  CHECK(d::format_mass_kg(1.5) == "1.50 kg");
  CHECK(d::format_mass_kg(2500) == "2.50 t");
  CHECK(d::format_mass_kg(1e-9) == "0.00100 mg");  // below the smallest unit: stays in it
  // Rounding decides the unit: 999.96 g rounds to 1.00 kg, 999.4 g stays 999 g.
  CHECK(d::format_mass_kg(0.99996) == "1.00 kg");
  CHECK(d::format_mass_kg(0.9994) == "999 g");
  CHECK(d::format_mass_kg(0.009996) == "10.0 g");  // one decimal fewer after rounding up
  CHECK(d::format_co2e_kg(0.0123) == "12.3 g CO2e");
  CHECK(d::format_co2e_kg(0) == "0 kg CO2e");
}

TEST_CASE("units: energy", "[report][units]") {
  CHECK(d::format_energy_j(0) == "0 J");
  CHECK(d::format_energy_j(0.05) == "50.0 mJ");
  CHECK(d::format_energy_j(12.3456) == "12.3 J");
  CHECK(d::format_energy_j(3000) == "3.00 kJ");  // kJ only below 1 Wh
  CHECK(d::format_energy_j(3600) == "1.00 Wh");
  CHECK(d::format_energy_j(9e6) == "2.50 kWh");
  CHECK(d::format_energy_j(7.2e9) == "2.00 MWh");
  CHECK(d::format_energy_j(-4.32e6) == "-1.20 kWh");
  CHECK(d::format_energy_j(12.3456, 2) == "12 J");
  CHECK(d::format_energy_j(12.3456, 5) == "12.346 J");
}

TEST_CASE("units: durations", "[report][units]") {
  CHECK(d::format_duration_ns(0.5) == "0.500 ns");
  CHECK(d::format_duration_ns(512) == "512 ns");
  CHECK(d::format_duration_ns(1500) == "1.50 µs");
  CHECK(d::format_duration_ns(1.5e6) == "1.50 ms");
  CHECK(d::format_duration_ns(999999) == "1.00 ms");
  CHECK(d::format_duration_ns(12.3456e9) == "12.3 s");
  CHECK(d::format_duration_ns(150e9) == "2.50 min");
  CHECK(d::format_duration_ns(59.9996e9) == "1.00 min");
  CHECK(d::format_duration_ns(7200e9) == "2.00 h");
  CHECK(d::format_duration_ns(0) == "0 s");
  CHECK(d::format_duration_s(0.25) == "250 ms");
}

TEST_CASE("units: bytes and power", "[report][units]") {
  CHECK(d::format_bytes(512) == "512 B");
  CHECK(d::format_bytes(1000) == "1000 B");  // 0.977 KiB: still bytes, and whole
  CHECK(d::format_bytes(1536) == "1.50 KiB");
  CHECK(d::format_bytes(1.5 * 1024 * 1024 * 1024) == "1.50 GiB");
  CHECK(d::format_bytes(123456789) == "118 MiB");
  CHECK(d::format_bytes(0) == "0 B");
  CHECK(d::format_power_w(0.25) == "250 mW");
  CHECK(d::format_power_w(250) == "250 W");
  CHECK(d::format_power_w(1500) == "1.50 kW");
}

TEST_CASE("units: not-a-number, infinities and the report's unit names", "[report][units]") {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  CHECK(d::format_energy_j(nan) == "n/a");
  CHECK(d::format_co2e_kg(nan) == "n/a");
  CHECK(d::format_energy_j(inf) == "inf J");
  CHECK(d::format_duration_ns(-inf) == "-inf s");
  CHECK(d::format_in_unit(2e6, "ns") == "2.00 ms");
  CHECK(d::format_in_unit(90, "s") == "1.50 min");
  CHECK(d::format_in_unit(9e6, "J") == "2.50 kWh");
  CHECK(d::format_in_unit(0.0123, "kg") == "12.3 g");
  CHECK(d::format_in_unit(0.0123, "kg CO2e") == "12.3 g CO2e");
  CHECK(d::format_in_unit(1536, "bytes") == "1.50 KiB");
  CHECK(d::format_in_unit(250, "W") == "250 W");
  // Units without a ladder: significant digits only, never an exponent.
  CHECK(d::format_in_unit(123456, "samples/s") == "123456 samples/s");
  CHECK(d::format_in_unit(12.34, "samples/s") == "12.3 samples/s");
  CHECK(d::format_in_unit(-0.5, "") == "-0.500");
  CHECK(d::format_in_unit(nan, "tokens/s") == "n/a");
}
