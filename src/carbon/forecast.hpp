// Forecast of a whole run from its first steps (carbontracker's idea, done with statistics):
// the remaining steps' time and energy are predicted from the observed mean and spread, with a
// normal-approximation prediction interval. Takes parsed observations, so a report and a JSONL
// stream feed it alike.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/values.hpp"

namespace trainmeter::detail {

/// Count, mean and sample standard deviation of a set of observations.
struct SampleStats {
  std::uint64_t n = 0;
  double mean = 0;
  std::optional<double> stddev;  ///< nullopt when n < 2
};
/// Welford's algorithm over `values` (stddev with n - 1 in the denominator).
SampleStats sample_stats(const std::vector<double>& values);

/// What was observed of a partial run.
struct ForecastObservation {
  std::string phase{kDefaultPhase};
  /// Wall time of the observed (post-warm-up) steps of the forecast phase, seconds.
  SampleStats step_s;
  /// Energy of observed steps, joules (nullopt when per-step energy is unknown).
  std::optional<SampleStats> step_energy_j;
  /// Steps of the phase already done (warm-up included); the forecast adds total - done.
  std::uint64_t steps_done = 0;
  /// Elapsed run time so far, seconds (includes start-up and other phases).
  double elapsed_s = 0;
  /// Energy recorded so far, joules (nullopt when not measured).
  std::optional<double> energy_j;
  double pue = 1.0;
  double intensity_g_per_kwh = 0;
  std::string intensity_source;
  std::optional<double> price_per_hour;
  std::optional<double> energy_price_per_kwh;
  std::string currency = "USD";
};

/// A predicted quantity with its 95% interval (nullopt bounds when the spread is unknown).
struct Predicted {
  std::optional<double> value;
  std::optional<double> low;
  std::optional<double> high;
};

struct Forecast {
  std::uint64_t total_steps = 0;
  std::uint64_t steps_done = 0;
  std::uint64_t steps_remaining = 0;
  std::size_t observed_steps = 0;  ///< n used for the mean and spread
  double step_mean_s = 0;
  std::optional<double> step_stddev_s;  ///< sample stddev; nullopt when n < 2
  std::optional<double> energy_per_step_mean_j;
  std::optional<double> energy_per_step_stddev_j;
  std::string energy_method;  ///< "per_step_energy", "average_power" or "not_measured"
  Predicted duration_s;
  Predicted energy_kwh;  ///< before PUE
  Predicted co2e_kg;
  Predicted cost_total;
};

/// Throws std::invalid_argument when nothing was observed or total_steps < steps_done.
/// duration = elapsed + r * mean step; 95% interval +-1.96 * s * sqrt(r * (1 + r/n)) (the spread
/// of the sum of r future steps plus the uncertainty of the mean from n observed ones). Energy
/// likewise from per-step energies, else at the run's average power over the predicted duration.
Forecast forecast_run(const ForecastObservation& obs, std::uint64_t total_steps);

/// The forecast as JSON, with the method stated and every input.
nlohmann::json forecast_json(const Forecast& f, const ForecastObservation& obs);

/// Reads a report's phase (e.g. "train"): step count and step-time mean/stddev from
/// phases[phase], per-step energies from the retained post-warm-up steps[] with energy_j, elapsed
/// time from run.duration_s, energy from energy.total_j, PUE and intensity from energy/carbon
/// (world default when absent) and prices from cost.inputs. Throws std::invalid_argument with a
/// one-line reason when the report lacks what is needed.
ForecastObservation observation_from_report(const nlohmann::json& report, const std::string& phase);

}  // namespace trainmeter::detail
