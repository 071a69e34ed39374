// Grid carbon intensity: the country and cloud-region tables compiled into the library
// (data/country_carbon_intensity.tsv, data/cloud_region_carbon_intensity.tsv) and time series
// read from a user's CSV file. Pure functions, shared by the carbon component and the CLI.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trainmeter::detail {

/// World average grid intensity used when nothing else is known: 475 g CO2e/kWh, IEA Global
/// Energy & CO2 Status Report 2019 (the default of CodeCarbon and Green Algorithms).
inline constexpr double kWorldIntensityGPerKwh = 475.0;
inline constexpr int kWorldIntensityYear = 2019;
inline constexpr const char* kWorldIntensitySource =
    "IEA Global Energy & CO2 Status Report 2019 (world average)";
/// Intensities above this are rejected as absurd: the dirtiest national grids in our table are
/// near 1300 g/kWh and pure lignite generation is about 1100-1200 g/kWh.
inline constexpr double kMaxIntensityGPerKwh = 2000.0;

/// One row of the country table. Thread-safe to read once returned.
struct CountryIntensity {
  std::string iso2;      ///< ISO 3166-1 alpha-2, upper case
  std::string iso3;      ///< ISO 3166-1 alpha-3, upper case
  std::string name;      ///< English short name
  double g_per_kwh = 0;  ///< g CO2e per kWh
  int year = 0;          ///< data year
  std::string source;    ///< citation
};

/// One row of the cloud-region table.
struct RegionIntensity {
  std::string region;    ///< "provider:region", lower case, e.g. "gcp:europe-west9"
  std::string country;   ///< ISO 3166-1 alpha-2 of the region's location
  std::string location;  ///< city or area, e.g. "Paris, France"
  double g_per_kwh = 0;
  int year = 0;
  std::string source;
};

/// A table parsed from TSV text, with the problems found (one per bad line, "line N: ...").
template <typename Row>
struct ParsedTable {
  std::vector<Row> rows;
  std::vector<std::string> errors;
};
ParsedTable<CountryIntensity> parse_country_table(std::string_view tsv);
ParsedTable<RegionIntensity> parse_region_table(std::string_view tsv);

/// Calls `row(line_number, fields)` for each data line of TSV text: blank lines, '#' comments
/// and the header (recognised by its first field `header0`) skipped, a trailing '\r' dropped,
/// fields split at tabs (untrimmed). The one TSV reader of every bundled table.
void for_each_tsv_line(
    std::string_view tsv, std::string_view header0,
    const std::function<void(std::size_t, const std::vector<std::string_view>&)>& row);

/// The embedded tables, parsed once on first use (thread-safe static initialisation).
const std::vector<CountryIntensity>& country_table();
const std::vector<RegionIntensity>& region_table();

/// Case-insensitive lookup by alpha-2 or alpha-3 code (surrounding blanks ignored).
std::optional<CountryIntensity> lookup_country(std::string_view code);
/// "provider:region", case-insensitive; spaces are ignored so that Azure display names
/// ("azure:West Europe") match their ids ("azure:westeurope").
std::optional<RegionIntensity> lookup_region(std::string_view provider_region);
/// The region's key as stored in the table ("azure:West Europe" -> "azure:westeurope").
std::string normalise_region(std::string_view provider_region);

/// One point of an intensity time series: the value holds from `unix_ns` until the next point.
struct IntensitySample {
  std::int64_t unix_ns = 0;
  double g_per_kwh = 0;
};

/// A time series as read from a CSV file "timestamp_utc,g_per_kwh", strictly increasing in time.
struct IntensitySeries {
  std::string file;  ///< where it came from (path or a name given by the caller)
  std::vector<IntensitySample> samples;
};

/// Parses CSV text. Accepts an optional header line, blank lines, '#' comments and CRLF. Throws
/// Error naming `file`, the line number and the offending text for a malformed line, a value
/// outside (0, 2000], a timestamp not after the previous one, or an empty series.
IntensitySeries parse_intensity_series(std::string_view csv, const std::string& file);
/// Reads and parses a file; Error names the key TRAINMETER_CARBON_INTENSITY_FILE when unreadable.
IntensitySeries load_intensity_series(const std::string& path);

/// ISO 8601 date-time -> ns since the Unix epoch. Accepts "YYYY-MM-DDTHH:MM[:SS[.frac]]" with
/// 'T' or ' ' and a "Z" or "+HH:MM"/"-HH:MM" offset (no offset means UTC). nullopt otherwise.
std::optional<std::int64_t> parse_utc_timestamp(std::string_view text);
/// ns since the Unix epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_utc(std::int64_t unix_ns);

/// Energy consumed over a time interval (spread uniformly within it).
struct EnergyInterval {
  std::int64_t start_unix_ns = 0;
  std::int64_t end_unix_ns = 0;
  double energy_j = 0;
};

/// Result of integrating energy against a series sample by sample.
struct SeriesIntegration {
  double energy_j = 0;                    ///< total energy integrated
  double weighted_g_per_kwh = 0;          ///< sum(E_i g_i) / sum(E_i); 0 when energy_j == 0
  double energy_before_series_j = 0;      ///< energy before the first sample (first value used)
  double energy_after_last_sample_j = 0;  ///< energy after the last sample (last value held)
  std::size_t samples_used = 0;           ///< samples whose holding period received energy
};
/// Each interval's energy is spread uniformly over its duration (an instant interval puts it all
/// at its start) and multiplied by the intensity holding at each moment.
SeriesIntegration integrate_series(const IntensitySeries& series,
                                   const std::vector<EnergyInterval>& intervals);

}  // namespace trainmeter::detail
