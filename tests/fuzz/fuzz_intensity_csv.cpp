// Grid-intensity time series (carbon_intensity_file): any text either throws Error or gives a
// strictly increasing series of values in (0, 2000] whose energy-weighted integration is finite
// and within the series' range.
#include <cmath>
#include <string_view>

#include "carbon/intensity.hpp"
#include "fuzz_support.hpp"
#include "trainmeter/error.hpp"

using namespace trainmeter;

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  const std::string_view csv(reinterpret_cast<const char*>(data), size);
  // Timestamps alone (the first line), as the CSV reader and the CLI parse them.
  if (auto ts = detail::parse_utc_timestamp(csv.substr(0, csv.find('\n')))) {
    const std::string formatted = detail::format_utc(*ts);
    fuzz::check(!formatted.empty(), "format_utc empty");
  }
  detail::IntensitySeries series;
  try {
    series = detail::parse_intensity_series(csv, "fuzz.csv");
  } catch (const Error&) {
    return 0;
  }
  fuzz::check(!series.samples.empty(), "accepted an empty series");
  double lo = series.samples[0].g_per_kwh, hi = lo;
  for (std::size_t i = 0; i < series.samples.size(); ++i) {
    const double g = series.samples[i].g_per_kwh;
    fuzz::check(g > 0 && g <= detail::kMaxIntensityGPerKwh, "value out of (0, 2000]",
                std::to_string(g));
    if (i > 0)
      fuzz::check(series.samples[i].unix_ns > series.samples[i - 1].unix_ns, "not increasing");
    lo = std::min(lo, g);
    hi = std::max(hi, g);
  }
  // A run spanning the series, plus one before and one after it.
  const std::int64_t first = series.samples.front().unix_ns, last = series.samples.back().unix_ns;
  std::vector<detail::EnergyInterval> intervals = {{first, last, 1000.0},
                                                   {first - 3'600'000'000'000, first, 10.0},
                                                   {last, last + 60'000'000'000, 5.0}};
  const detail::SeriesIntegration r = detail::integrate_series(series, intervals);
  fuzz::check(std::isfinite(r.energy_j) && std::isfinite(r.weighted_g_per_kwh),
              "non-finite integration");
  fuzz::check(std::fabs(r.energy_j - 1015.0) < 1e-6 * 1015.0, "energy not conserved",
              std::to_string(r.energy_j));
  fuzz::check(r.weighted_g_per_kwh >= lo * (1 - 1e-9) && r.weighted_g_per_kwh <= hi * (1 + 1e-9),
              "weighted intensity outside the series' range", std::to_string(r.weighted_g_per_kwh));
  return 0;
}
