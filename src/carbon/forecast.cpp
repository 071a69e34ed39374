#include "carbon/forecast.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "carbon/intensity.hpp"
#include "carbon/model.hpp"
#include "carbon/settings.hpp"

namespace trainmeter::detail {
namespace {

// Two-sided 95% quantile of the standard normal distribution.
constexpr double kZ95 = 1.959963984540054;

// Half-width of the 95% prediction interval of the sum of r future observations, given the
// sample stddev s of n past ones: Var = r s^2 (spread of the sum) + r^2 s^2 / n (uncertainty of
// the estimated mean).
double half_width(double s, std::uint64_t n, std::uint64_t r) {
  const double rd = double(r);
  return kZ95 * s * std::sqrt(rd * (1.0 + rd / double(n)));
}

std::optional<double> num(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

nlohmann::json predicted_json(const Predicted& p) {
  return {{rk::value, json_or_null(p.value)},
          {"low", json_or_null(p.low)},
          {"high", json_or_null(p.high)}};
}

Predicted scale(const Predicted& p, double k) {
  Predicted out;
  if (p.value) out.value = *p.value * k;
  if (p.low) out.low = *p.low * k;
  if (p.high) out.high = *p.high * k;
  return out;
}

}  // namespace

SampleStats sample_stats(const std::vector<double>& values) {
  SampleStats s;
  double m2 = 0;
  for (double x : values) {
    ++s.n;
    const double delta = x - s.mean;
    s.mean += delta / double(s.n);
    m2 += delta * (x - s.mean);
  }
  if (s.n >= 2) s.stddev = std::sqrt(m2 / double(s.n - 1));
  return s;
}

Forecast forecast_run(const ForecastObservation& obs, std::uint64_t total_steps) {
  if (obs.step_s.n == 0) {
    throw std::invalid_argument(
        fmt::format("no post-warm-up steps of phase '{}' observed yet", obs.phase));
  }
  if (total_steps < obs.steps_done) {
    throw std::invalid_argument(fmt::format(
        "--total-steps {} is less than the {} steps already done", total_steps, obs.steps_done));
  }
  Forecast f;
  f.total_steps = total_steps;
  f.steps_done = obs.steps_done;
  f.steps_remaining = total_steps - obs.steps_done;
  f.observed_steps = static_cast<std::size_t>(obs.step_s.n);
  f.step_mean_s = obs.step_s.mean;
  f.step_stddev_s = obs.step_s.stddev;
  const std::uint64_t r = f.steps_remaining;

  f.duration_s.value = obs.elapsed_s + double(r) * obs.step_s.mean;
  if (obs.step_s.stddev) {
    const double h = half_width(*obs.step_s.stddev, obs.step_s.n, r);
    f.duration_s.low = std::max(obs.elapsed_s, *f.duration_s.value - h);
    f.duration_s.high = *f.duration_s.value + h;
  }

  Predicted energy_j;
  if (obs.energy_j && obs.step_energy_j && obs.step_energy_j->n > 0) {
    f.energy_method = "per_step_energy";
    f.energy_per_step_mean_j = obs.step_energy_j->mean;
    f.energy_per_step_stddev_j = obs.step_energy_j->stddev;
    energy_j.value = *obs.energy_j + double(r) * obs.step_energy_j->mean;
    if (obs.step_energy_j->stddev) {
      const double h = half_width(*obs.step_energy_j->stddev, obs.step_energy_j->n, r);
      energy_j.low = std::max(*obs.energy_j, *energy_j.value - h);
      energy_j.high = *energy_j.value + h;
    }
  } else if (obs.energy_j && obs.elapsed_s > 0) {
    f.energy_method = "average_power";
    energy_j = scale(f.duration_s, *obs.energy_j / obs.elapsed_s);
  } else {
    f.energy_method = "not_measured";
  }
  f.energy_kwh = scale(energy_j, 1.0 / kJoulesPerKwh);
  f.co2e_kg = scale(f.energy_kwh, obs.pue * obs.intensity_g_per_kwh / 1000.0);

  if (obs.price_per_hour || obs.energy_price_per_kwh) {
    auto total = [&](std::optional<double> duration, std::optional<double> kwh) {
      if (!duration && !kwh) return std::optional<double>();
      CostInputs in;
      in.price_per_hour = obs.price_per_hour;
      in.energy_price_per_kwh = obs.energy_price_per_kwh;
      if (duration) in.duration_h = *duration / 3600.0;
      if (kwh) in.energy_kwh = *kwh * obs.pue;
      return compute_cost(in).total;
    };
    f.cost_total.value = total(f.duration_s.value, f.energy_kwh.value);
    // Cost grows with both duration and energy, so the bounds pair up.
    if ((f.duration_s.low || !obs.price_per_hour) &&
        (f.energy_kwh.low || !obs.energy_price_per_kwh)) {
      f.cost_total.low = total(f.duration_s.low, f.energy_kwh.low);
      f.cost_total.high = total(f.duration_s.high, f.energy_kwh.high);
    }
  }
  return f;
}

nlohmann::json forecast_json(const Forecast& f, const ForecastObservation& obs) {
  nlohmann::json j;
  j[rk::phase] = obs.phase;
  j["total_steps"] = f.total_steps;
  j["steps_done"] = f.steps_done;
  j["steps_remaining"] = f.steps_remaining;
  j["observed_steps"] = f.observed_steps;
  j["step_time_s"] = {{rk::mean, f.step_mean_s}, {rk::stddev, json_or_null(f.step_stddev_s)}};
  if (f.energy_per_step_mean_j) {
    j["energy_per_step_j"] = {{rk::mean, *f.energy_per_step_mean_j},
                              {rk::stddev, json_or_null(f.energy_per_step_stddev_j)}};
  } else {
    j["energy_per_step_j"] = nullptr;
  }
  j["predicted"] = {
      {rk::duration_s, predicted_json(f.duration_s)},
      {rk::energy_kwh, predicted_json(f.energy_kwh)},
      {rk::co2e_kg, predicted_json(f.co2e_kg)},
      {rk::cost, (obs.price_per_hour || obs.energy_price_per_kwh) ? predicted_json(f.cost_total)
                                                                  : nlohmann::json(nullptr)}};
  j[rk::currency] = obs.currency;
  j[rk::inputs] = {{"elapsed_s", obs.elapsed_s},
                   {rk::energy_j, json_or_null(obs.energy_j)},
                   {rk::pue, obs.pue},
                   {rk::intensity_g_per_kwh, obs.intensity_g_per_kwh},
                   {rk::intensity_source, obs.intensity_source},
                   {rk::price_per_hour, json_or_null(obs.price_per_hour)},
                   {rk::energy_price_per_kwh, json_or_null(obs.energy_price_per_kwh)}};
  j["energy_method"] = f.energy_method;
  j[rk::method] =
      "duration = elapsed_s + steps_remaining * mean step time; energy = energy so far + "
      "steps_remaining * mean energy per step (per_step_energy) or average power * predicted "
      "duration (average_power); co2e_kg = energy_kwh * pue * intensity_g_per_kwh / 1000; "
      "95% interval: normal approximation, +-1.96 * s * sqrt(r * (1 + r / n)) for r remaining "
      "and n observed steps with sample stddev s (steps assumed independent; time outside the "
      "phase's steps assumed not to grow)";
  return j;
}

ForecastObservation observation_from_report(const nlohmann::json& report,
                                            const std::string& phase) {
  ForecastObservation obs;
  obs.phase = phase;
  if (!report.is_object() || !report.contains(rk::phases) || !report[rk::phases].is_object() ||
      !report[rk::phases].contains(phase)) {
    throw std::invalid_argument(fmt::format("the report has no phase '{}'", phase));
  }
  const auto& p = report[rk::phases][phase];
  auto steps = num(p, rk::steps);
  auto warmup = num(p, rk::warmup_steps);
  if (!steps) throw std::invalid_argument(fmt::format("phases.{}.steps is missing", phase));
  obs.steps_done = static_cast<std::uint64_t>(*steps);
  const auto& st = p.contains(rk::step_time_ns) ? p[rk::step_time_ns] : nlohmann::json();
  auto mean_ns = num(st, rk::mean);
  if (!mean_ns) {
    throw std::invalid_argument(fmt::format(
        "phase '{}' has no step-time statistics (no post-warm-up step recorded yet)", phase));
  }
  obs.step_s.n = obs.steps_done - static_cast<std::uint64_t>(warmup.value_or(0));
  obs.step_s.mean = *mean_ns * 1e-9;
  if (auto sd = num(st, rk::stddev); sd && obs.step_s.n >= 2) obs.step_s.stddev = *sd * 1e-9;

  if (report.contains(rk::steps) && report[rk::steps].is_array()) {
    std::vector<double> energies;
    for (const auto& s : report[rk::steps]) {
      if (!s.is_object() || s.value(rk::phase, std::string()) != phase) continue;
      if (s.value(rk::warmup, false)) continue;
      if (auto e = num(s, rk::energy_j)) energies.push_back(*e);
    }
    if (!energies.empty()) obs.step_energy_j = sample_stats(energies);
  }

  const auto& run = report.contains(rk::run) ? report[rk::run] : nlohmann::json();
  obs.elapsed_s = num(run, rk::duration_s).value_or(0.0);
  const auto& energy = report.contains(rk::energy) ? report[rk::energy] : nlohmann::json();
  if (auto j = num(energy, rk::total_j)) {
    obs.energy_j = *j;
  } else if (auto kwh = num(energy, rk::total_kwh)) {
    obs.energy_j = *kwh * kJoulesPerKwh;
  }
  const auto& carbon = report.contains(rk::carbon) ? report[rk::carbon] : nlohmann::json();
  const auto& cost = report.contains(rk::cost) ? report[rk::cost] : nlohmann::json();
  if (!carbon.is_object() && report.contains(rk::config) && report[rk::config].is_object()) {
    // A stream or a crashed run has no carbon section yet: the run's own configuration says
    // which intensity, PUE and prices it would have used.
    try {
      const CarbonSettings s = carbon_settings_from_config_json(report[rk::config]);
      obs.pue = s.pue;
      obs.intensity_g_per_kwh = s.intensity.g_per_kwh;
      obs.intensity_source = s.intensity.source;
      obs.price_per_hour = s.price_per_hour;
      obs.energy_price_per_kwh = s.energy_price_per_kwh;
      obs.currency = s.currency;
      return obs;
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("the run's carbon configuration: {}", e.what()));
    }
  }
  obs.pue = num(energy, rk::pue).value_or(num(carbon, rk::pue).value_or(1.0));
  if (auto g = num(carbon, rk::intensity_g_per_kwh)) {
    obs.intensity_g_per_kwh = *g;
    obs.intensity_source = carbon.value(rk::intensity_source, std::string("report"));
  } else {
    obs.intensity_g_per_kwh = kWorldIntensityGPerKwh;
    obs.intensity_source = "world_default";
  }
  if (cost.is_object()) {
    const auto& in = cost.contains(rk::inputs) ? cost[rk::inputs] : nlohmann::json();
    obs.price_per_hour = num(in, rk::price_per_hour);
    obs.energy_price_per_kwh = num(in, rk::energy_price_per_kwh);
    obs.currency = cost.value(rk::currency, std::string("USD"));
  }
  return obs;
}

}  // namespace trainmeter::detail
