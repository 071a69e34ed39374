// Carbon and cost settings (grid intensity, PUE, prices) resolved and validated from a Config or
// from CLI options, and the function that turns a report's recorded energy into its carbon and
// cost sections. Shared by the carbon component and `trainmeter recompute`/`forecast`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/diagnostics.hpp"
#include "base/report_keys.hpp"
#include "carbon/intensity.hpp"
#include "carbon/model.hpp"
#include "trainmeter/config.hpp"

namespace trainmeter::detail {

/// Where the intensity came from (report key carbon.intensity_source; never renamed).
namespace intensity_source {
inline constexpr const char* kExplicit = "explicit";
inline constexpr const char* kTimeSeries = rk::time_series;
inline constexpr const char* kCloudRegion = "cloud_region";
inline constexpr const char* kCountry = "country";
inline constexpr const char* kWorldDefault = "world_default";
}  // namespace intensity_source

/// The resolved grid intensity and where it came from.
struct IntensityChoice {
  std::string source = intensity_source::kWorldDefault;  ///< one of intensity_source::k*
  /// g CO2e/kWh; for a time series, its time-weighted mean over the whole file until the run is
  /// known (apply_carbon replaces it by the mean weighted over the run's energy).
  double g_per_kwh = kWorldIntensityGPerKwh;
  std::optional<std::string> region;       ///< "gcp:europe-west9", "FR", ... (location given)
  std::optional<std::string> region_name;  ///< "Paris, France", "France"
  std::string data_source = kWorldIntensitySource;
  std::optional<int> data_year = kWorldIntensityYear;
  std::optional<IntensitySeries> series;  ///< set when source is time_series
};

/// Everything the carbon and cost figures depend on besides the recorded energy.
struct CarbonSettings {
  IntensityChoice intensity;
  double pue = 1.0;
  std::optional<double> price_per_hour;
  std::optional<double> energy_price_per_kwh;
  std::string currency = "USD";
};

/// Resolution order: explicit value, time series file, cloud region, country, world default.
/// Every key that is set is validated, even when a higher-priority one wins, so a typo never
/// hides. Throws Error naming the key (TRAINMETER_*), the value and what is accepted.
IntensityChoice resolve_intensity(const Config& config);
/// The same for the pure values (shared with the CLI's --intensity/--country/--region).
IntensityChoice intensity_from_value(double g_per_kwh, const std::string& key);
IntensityChoice intensity_from_country(const std::string& code, const std::string& key);
IntensityChoice intensity_from_region(const std::string& provider_region, const std::string& key);
IntensityChoice intensity_from_series(IntensitySeries series);
/// Throws Error unless 1 <= pue <= 3 (the worst surveyed data centres are near 2.5).
void validate_pue(double pue, const std::string& key);
/// resolve_intensity plus PUE, prices and currency, all validated (prices >= 0, finite).
CarbonSettings carbon_settings_from_config(const Config& config);

/// The same from a report's or stream header's "config" object (effective values as text, e.g.
/// {"country": "FR", "pue": "1.2"}); keys absent or empty keep their defaults. Throws Error on a
/// value Config::set or the checks above reject.
CarbonSettings carbon_settings_from_config_json(const nlohmann::json& config);

/// Fills report["carbon"] and report["cost"], and energy.pue / energy.total_kwh_with_pue when
/// report["energy"] is an object (else energy stays null and carbon numbers are null). Reads
/// energy.total_j (or total_kwh), run.duration_s and, for a time series, steps[].energy_j with
/// their start offsets from `run_start_unix_ns` (the report's run.start_utc when nullopt).
/// Problems (series not covering the run...) go to `diagnostics` when given. Never throws on a
/// well-formed report; malformed fields are treated as absent.
/// `step_energy`: the steps' energy at their times (unix ns) where the caller has it (the
/// session, from the per-step columns); nullptr reads steps[] of `report`.
void apply_carbon(nlohmann::json& report, const CarbonSettings& settings,
                  std::optional<std::int64_t> run_start_unix_ns, Diagnostics* diagnostics,
                  const std::vector<EnergyInterval>* step_energy = nullptr);

/// Total energy recorded in a report (energy.total_j, else total_kwh x 3.6e6), in joules.
std::optional<double> report_energy_j(const nlohmann::json& report);

/// How energy is laid over time for a time series: "step_energy" (steps' energy_j at their
/// times, the rest of the total spread uniformly over the run) or "uniform_power" (the total
/// spread uniformly). Returns the intervals and writes the method name.
std::vector<EnergyInterval> energy_intervals(std::vector<EnergyInterval> steps, double total_j,
                                             std::int64_t run_start_unix_ns,
                                             std::int64_t run_end_unix_ns, std::string* method);
/// The same from the report's steps[].energy_j.
std::vector<EnergyInterval> energy_intervals(const nlohmann::json& report, double total_j,
                                             std::int64_t run_start_unix_ns,
                                             std::int64_t run_end_unix_ns, std::string* method);
/// steps[].energy_j of a report as intervals at the steps' times (unix ns).
std::vector<EnergyInterval> step_energy_from_report(const nlohmann::json& report,
                                                    std::int64_t run_start_unix_ns);

}  // namespace trainmeter::detail
