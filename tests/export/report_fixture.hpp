// A synthetic, schema-valid report with known figures, for the exporters and compare.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::test {

/// The run and phase names used by the fixture: quotes, backslash, newline and non-ASCII.
inline const std::string kTrickyName = "run \"q\" \\ back\nline, caf\xc3\xa9 \xe2\x9c\x93";

struct FixtureOptions {
  std::string name = kTrickyName;
  std::vector<double> walls_ns = {2e6, 1e6, 1.5e6, 1e6, 2e6};  ///< first one is warm-up
  std::optional<double> cpu_j = 3.6e6;                         ///< cpu component energy (1 kWh)
  std::optional<double> dram_j = 7.2e5;                        ///< dram component (0.2 kWh)
  std::optional<double> gpu_j = 1.8e6;                         ///< gpu:0 (0.5 kWh)
  std::optional<double> co2e_kg = 0.57;
  double pue = 1.5;
  std::string country = "FR";
};

/// {"schema_version":1, ...} with phases computed from walls_ns (first step warm-up), a memory
/// timeline of three points, energy components cpu/dram/gpu:0, carbon from a country.
nlohmann::json make_report(const FixtureOptions& o = {});

/// A schema-valid cost section with only an energy price: `energy_kwh` (with PUE) at
/// `price_per_kwh` in `currency` (energy = total = their product).
nlohmann::json energy_cost_section(const std::string& currency, double price_per_kwh,
                                   double energy_kwh);

/// Writes a report (dump_report) to `path`.
void write_report(const std::string& path, const nlohmann::json& report);

}  // namespace trainmeter::test
