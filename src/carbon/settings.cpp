#include "carbon/settings.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::detail {
namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string accepted_regions_hint(const std::string& value) {
  const std::string key = normalise_region(value);
  const auto colon = key.find(':');
  std::set<std::string> providers;
  std::vector<std::string> same_provider;
  for (const auto& row : region_table()) {
    const std::string provider = row.region.substr(0, row.region.find(':'));
    providers.insert(provider);
    if (colon != std::string::npos && provider == key.substr(0, colon)) {
      same_provider.push_back(row.region.substr(provider.size() + 1));
    }
  }
  if (!same_provider.empty()) {
    return fmt::format("known {} regions: {}", key.substr(0, colon), join(same_provider, ", "));
  }
  return fmt::format("expected provider:region with provider one of {}",
                     join(std::vector<std::string>(providers.begin(), providers.end()), ", "));
}

// Configuration errors suggest the other environment variables; CLI errors do not.
std::string env_alternative(const std::string& key, const char* other) {
  if (key.rfind("TRAINMETER_", 0) != 0) return "";
  return fmt::format("; or set {} instead", other);
}

std::optional<double> number_at(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

// A time-weighted mean over [start, end]: 1 J spread uniformly (an instant when end <= start).
double time_weighted_mean(const IntensitySeries& series, std::int64_t start, std::int64_t end,
                          std::size_t* samples_in_window) {
  const SeriesIntegration r = integrate_series(series, {{start, end, 1.0}});
  if (samples_in_window) *samples_in_window = r.samples_used;
  return r.weighted_g_per_kwh;
}

}  // namespace

void validate_pue(double pue, const std::string& key) {
  const ConfigKey& k = config_key(rk::pue);
  if (!std::isfinite(pue) || pue < k.min_value || pue > k.max_value) {
    throw Error(fmt::format(
        "{}={}: power usage effectiveness must be a number from {:.1f} (no overhead) to {:.1f} "
        "(typical data centres: 1.1-1.6)",
        key, pue, k.min_value, k.max_value));
  }
}

IntensityChoice intensity_from_value(double g_per_kwh, const std::string& key) {
  const ConfigKey& k = config_key("carbon_intensity");
  if (!std::isfinite(g_per_kwh) || g_per_kwh < k.min_value || g_per_kwh > k.max_value) {
    throw Error(fmt::format(
        "{}={}: grid carbon intensity must be a number from {} to {} g CO2e/kWh (world average "
        "{})",
        key, g_per_kwh, k.min_value, k.max_value, kWorldIntensityGPerKwh));
  }
  IntensityChoice c;
  c.source = intensity_source::kExplicit;
  c.g_per_kwh = g_per_kwh;
  c.region.reset();
  c.region_name.reset();
  c.data_source = fmt::format("given by the user ({})", key);
  c.data_year.reset();
  return c;
}

IntensityChoice intensity_from_country(const std::string& code, const std::string& key) {
  auto row = lookup_country(code);
  if (!row) {
    throw Error(fmt::format(
        "{}={}: unknown country code; accepted: an ISO 3166-1 alpha-2 or alpha-3 code listed in "
        "data/country_carbon_intensity.tsv (e.g. FR or FRA, US or USA, DE or DEU){}",
        key, code, env_alternative(key, "TRAINMETER_CARBON_INTENSITY")));
  }
  IntensityChoice c;
  c.source = intensity_source::kCountry;
  c.g_per_kwh = row->g_per_kwh;
  c.region = row->iso2;
  c.region_name = row->name;
  c.data_source = row->source;
  c.data_year = row->year;
  return c;
}

IntensityChoice intensity_from_region(const std::string& provider_region, const std::string& key) {
  auto row = lookup_region(provider_region);
  if (!row) {
    throw Error(
        fmt::format("{}={}: unknown cloud region ({}){}", key, provider_region,
                    accepted_regions_hint(provider_region),
                    env_alternative(key, "TRAINMETER_COUNTRY or TRAINMETER_CARBON_INTENSITY")));
  }
  IntensityChoice c;
  c.source = intensity_source::kCloudRegion;
  c.g_per_kwh = row->g_per_kwh;
  c.region = row->region;
  c.region_name = fmt::format("{} ({})", row->location, row->country);
  c.data_source = row->source;
  c.data_year = row->year;
  return c;
}

IntensityChoice intensity_from_series(IntensitySeries series) {
  IntensityChoice c;
  c.source = intensity_source::kTimeSeries;
  const auto& s = series.samples;
  c.g_per_kwh = time_weighted_mean(series, s.front().unix_ns, s.back().unix_ns, nullptr);
  c.region.reset();
  c.region_name.reset();
  c.data_source = series.file;
  c.data_year.reset();
  c.series = std::move(series);
  return c;
}

IntensityChoice resolve_intensity(const Config& config) {
  std::vector<std::string> errors;
  std::optional<IntensityChoice> explicit_value, series, region, country;
  auto attempt = [&](std::optional<IntensityChoice>& slot, auto&& make) {
    try {
      slot = make();
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  };
  if (config.carbon_intensity) {
    attempt(explicit_value, [&] {
      return intensity_from_value(*config.carbon_intensity, "TRAINMETER_CARBON_INTENSITY");
    });
  }
  if (!config.carbon_intensity_file.empty()) {
    attempt(series, [&] {
      return intensity_from_series(load_intensity_series(config.carbon_intensity_file));
    });
  }
  if (!config.cloud_region.empty()) {
    attempt(region,
            [&] { return intensity_from_region(config.cloud_region, "TRAINMETER_CLOUD_REGION"); });
  }
  if (!config.country.empty()) {
    attempt(country, [&] { return intensity_from_country(config.country, "TRAINMETER_COUNTRY"); });
  }
  if (!errors.empty()) throw Error(join(errors, "\n"));

  IntensityChoice chosen;
  if (explicit_value) {
    chosen = std::move(*explicit_value);
  } else if (series) {
    chosen = std::move(*series);
  } else if (region) {
    chosen = std::move(*region);
  } else if (country) {
    chosen = std::move(*country);
  }
  // An explicit value or a series says nothing about where the run was; a region or country
  // given beside it still names the location in the report.
  if (!chosen.region) {
    const auto& where = region ? region : country;
    if (where) {
      chosen.region = where->region;
      chosen.region_name = where->region_name;
    }
  }
  return chosen;
}

CarbonSettings carbon_settings_from_config(const Config& config) {
  std::vector<std::string> errors;
  CarbonSettings s;
  try {
    s.intensity = resolve_intensity(config);
  } catch (const Error& e) {
    errors.push_back(e.what());
  }
  try {
    validate_pue(config.pue, "TRAINMETER_PUE");
  } catch (const Error& e) {
    errors.push_back(e.what());
  }
  s.pue = config.pue;
  auto price = [&](const std::optional<double>& v, const char* key) {
    if (v && (!std::isfinite(*v) || *v < 0)) {
      errors.push_back(fmt::format("{}={}: a price must be a finite number >= 0", key, *v));
    }
  };
  price(config.price_per_hour, "TRAINMETER_PRICE_PER_HOUR");
  price(config.energy_price_per_kwh, "TRAINMETER_ENERGY_PRICE_PER_KWH");
  if (config.currency.empty()) {
    errors.push_back("TRAINMETER_CURRENCY=: the currency must be a non-empty code such as USD");
  }
  if (!errors.empty()) throw Error(join(errors, "\n"));
  s.price_per_hour = config.price_per_hour;
  s.energy_price_per_kwh = config.energy_price_per_kwh;
  s.currency = config.currency;
  return s;
}

CarbonSettings carbon_settings_from_config_json(const nlohmann::json& config) {
  Config c;
  if (config.is_object()) {
    static constexpr const char* kKeys[] = {
        rk::pue,   "carbon_intensity", "carbon_intensity_file",  "cloud_region",
        "country", rk::price_per_hour, rk::energy_price_per_kwh, rk::currency};
    for (const char* key : kKeys) {
      auto it = config.find(key);
      if (it == config.end() || !it->is_string() || it->get<std::string>().empty()) continue;
      c.set(key, it->get<std::string>());
    }
  }
  return carbon_settings_from_config(c);
}

std::optional<double> report_energy_j(const nlohmann::json& report) {
  if (!report.is_object() || !report.contains(rk::energy)) return std::nullopt;
  const auto& energy = report[rk::energy];
  if (auto j = number_at(energy, rk::total_j)) return *j;
  if (auto kwh = number_at(energy, rk::total_kwh)) return *kwh * kJoulesPerKwh;
  return std::nullopt;
}

std::vector<EnergyInterval> step_energy_from_report(const nlohmann::json& report,
                                                    std::int64_t run_start_unix_ns) {
  std::vector<EnergyInterval> out;
  if (report.contains(rk::steps) && report[rk::steps].is_array()) {
    for (const auto& step : report[rk::steps]) {
      auto e = number_at(step, rk::energy_j);
      auto offset = number_at(step, rk::start_offset_ns);
      auto wall = number_at(step, rk::wall_ns);
      if (!e || !offset || !wall || *e < 0 || *wall < 0) continue;
      const std::int64_t start = run_start_unix_ns + static_cast<std::int64_t>(*offset);
      out.push_back({start, start + static_cast<std::int64_t>(*wall), *e});
    }
  }
  return out;
}

std::vector<EnergyInterval> energy_intervals(std::vector<EnergyInterval> out, double total_j,
                                             std::int64_t run_start_unix_ns,
                                             std::int64_t run_end_unix_ns, std::string* method) {
  double steps_j = 0;
  for (const EnergyInterval& iv : out) steps_j += iv.energy_j;
  if (out.empty() || !(steps_j > 0)) {
    *method = "uniform_power";
    return {{run_start_unix_ns, run_end_unix_ns, total_j}};
  }
  *method = "step_energy";
  if (steps_j > total_j) {
    // Concurrent steps on several threads share the same energy; keep their shape only.
    for (auto& iv : out) iv.energy_j *= total_j / steps_j;
  } else if (total_j - steps_j > 0) {
    out.push_back({run_start_unix_ns, run_end_unix_ns, total_j - steps_j});
  }
  return out;
}

std::vector<EnergyInterval> energy_intervals(const nlohmann::json& report, double total_j,
                                             std::int64_t run_start_unix_ns,
                                             std::int64_t run_end_unix_ns, std::string* method) {
  return energy_intervals(step_energy_from_report(report, run_start_unix_ns), total_j,
                          run_start_unix_ns, run_end_unix_ns, method);
}

void apply_carbon(nlohmann::json& report, const CarbonSettings& settings,
                  std::optional<std::int64_t> run_start_unix_ns, Diagnostics* diagnostics,
                  const std::vector<EnergyInterval>* step_energy) {
  const std::optional<double> energy_j = report_energy_j(report);
  // Assigned, not built with `c ? optional(x) : nullopt` (GCC 12 -O2 then warns
  // maybe-uninitialized).
  std::optional<double> energy_kwh, energy_kwh_pue;
  if (energy_j) {
    energy_kwh = *energy_j / kJoulesPerKwh;
    energy_kwh_pue = *energy_kwh * settings.pue;
  }
  if (report.contains(rk::energy) && report[rk::energy].is_object()) {
    report[rk::energy][rk::pue] = settings.pue;
    report[rk::energy][rk::total_kwh_with_pue] = json_or_null(energy_kwh_pue);
  }
  std::optional<double> duration_s;
  if (report.contains(rk::run)) duration_s = number_at(report[rk::run], rk::duration_s);

  const IntensityChoice& choice = settings.intensity;
  double g = choice.g_per_kwh;
  nlohmann::json series_json = nullptr;
  if (choice.series) {
    const IntensitySeries& series = *choice.series;
    std::optional<std::int64_t> start = run_start_unix_ns;
    if (!start && report.contains(rk::run) && report[rk::run].is_object() &&
        report[rk::run].contains(rk::start_utc) && report[rk::run][rk::start_utc].is_string()) {
      start = parse_utc_timestamp(report[rk::run][rk::start_utc].get<std::string>());
    }
    series_json = {{rk::file, series.file},
                   {rk::samples, series.samples.size()},
                   {rk::first_utc, format_utc(series.samples.front().unix_ns)},
                   {rk::last_utc, format_utc(series.samples.back().unix_ns)}};
    if (!start) {
      // Without the run's start the run cannot be placed on the series: use the whole file.
      series_json[rk::weighting] = "whole_series_time";
      series_json[rk::samples_in_run] = nullptr;
      series_json[rk::energy_weighted_mean_g_per_kwh] = nullptr;
      series_json[rk::time_weighted_mean_g_per_kwh] = g;
      series_json[rk::energy_before_first_sample_fraction] = nullptr;
      series_json[rk::energy_after_last_sample_fraction] = nullptr;
      if (diagnostics) {
        diagnostics->add(rk::carbon, diag::kUnavailable,
                         "run start time unknown: intensity is the time-weighted mean of the "
                         "whole series");
      }
    } else {
      const std::int64_t end =
          *start + static_cast<std::int64_t>(std::llround(duration_s.value_or(0.0) * 1e9));
      const double time_mean = time_weighted_mean(series, *start, end, nullptr);
      // Samples whose timestamps fall inside the run (the one holding from before the run
      // started is used but is not "in" the run).
      std::size_t in_run = 0;
      for (const IntensitySample& smp : series.samples)
        in_run += smp.unix_ns >= *start && smp.unix_ns <= end ? 1 : 0;
      series_json[rk::samples_in_run] = in_run;
      series_json[rk::time_weighted_mean_g_per_kwh] = time_mean;
      g = time_mean;
      if (energy_j && *energy_j > 0) {
        std::string method;
        const auto intervals =
            energy_intervals(step_energy ? *step_energy : step_energy_from_report(report, *start),
                             *energy_j, *start, end, &method);
        const SeriesIntegration r = integrate_series(series, intervals);
        g = r.weighted_g_per_kwh;
        series_json[rk::weighting] = method;
        series_json[rk::energy_weighted_mean_g_per_kwh] = g;
        series_json[rk::energy_before_first_sample_fraction] =
            r.energy_j > 0 ? r.energy_before_series_j / r.energy_j : 0.0;
        series_json[rk::energy_after_last_sample_fraction] =
            r.energy_j > 0 ? r.energy_after_last_sample_j / r.energy_j : 0.0;
      } else {
        series_json[rk::weighting] = "time";
        series_json[rk::energy_weighted_mean_g_per_kwh] = nullptr;
        series_json[rk::energy_before_first_sample_fraction] = nullptr;
        series_json[rk::energy_after_last_sample_fraction] = nullptr;
      }
      // The last sample holds on; past one whole sampling step after it the series has ended.
      // A single-sample series is a constant on purpose and is not flagged.
      std::int64_t max_spacing = 0;
      for (std::size_t k = 1; k < series.samples.size(); ++k) {
        max_spacing =
            std::max(max_spacing, series.samples[k].unix_ns - series.samples[k - 1].unix_ns);
      }
      // Stale: no sample inside the run and the run more than a sampling step (at least a day)
      // away from the series, e.g. a 2020 series applied to a 2026 run.
      constexpr std::int64_t kDayNs = 86400LL * 1000000000LL;
      const std::int64_t slack = std::max(max_spacing, kDayNs);
      const bool stale = in_run == 0 && (end < series.samples.front().unix_ns - slack ||
                                         *start > series.samples.back().unix_ns + slack);
      if (stale && diagnostics) {
        diagnostics->add(
            rk::carbon, diag::kStale,
            fmt::format("intensity series {} covers {} to {} but the run was {} to {}: no sample "
                        "falls inside the run, the nearest sample's value was used; give a series "
                        "for the run's dates",
                        series.file, format_utc(series.samples.front().unix_ns),
                        format_utc(series.samples.back().unix_ns), format_utc(*start),
                        format_utc(end)));
      }
      if (!stale && *start < series.samples.front().unix_ns && diagnostics) {
        diagnostics->add(rk::carbon, diag::kUnavailable,
                         fmt::format("intensity series {} starts at {}, after the run started "
                                     "({}): the first sample's value was used before it",
                                     series.file, format_utc(series.samples.front().unix_ns),
                                     format_utc(*start)));
      }
      if (!stale && max_spacing > 0 && end > series.samples.back().unix_ns + max_spacing &&
          diagnostics) {
        diagnostics->add(
            rk::carbon, diag::kUnavailable,
            fmt::format("intensity series {} ends at {}, before the run ended ({}): "
                        "the last sample's value was used after it",
                        series.file, format_utc(series.samples.back().unix_ns), format_utc(end)));
      }
    }
  }

  const std::optional<double> co2e =
      energy_kwh ? std::optional<double>(carbon_kg(*energy_kwh, settings.pue, g)) : std::nullopt;
  nlohmann::json carbon;
  carbon[rk::intensity_g_per_kwh] = g;
  carbon[rk::intensity_source] = choice.source;
  carbon[rk::region] = json_or_null(choice.region);
  carbon[rk::region_name] = json_or_null(choice.region_name);
  carbon[rk::data_source] = choice.data_source;
  carbon[rk::data_year] = choice.data_year ? nlohmann::json(*choice.data_year) : nlohmann::json();
  carbon[rk::pue] = settings.pue;
  carbon[rk::energy_kwh] = json_or_null(energy_kwh);
  carbon[rk::energy_kwh_with_pue] = json_or_null(energy_kwh_pue);
  carbon[rk::co2e_kg] = json_or_null(co2e);
  carbon[rk::formula] = "co2e_kg = energy_kwh * pue * intensity_g_per_kwh / 1000";
  carbon[rk::equivalents] = equivalents_json(co2e);
  carbon[rk::time_series] = series_json;
  report[rk::carbon] = std::move(carbon);

  CostInputs cost;
  cost.price_per_hour = settings.price_per_hour;
  cost.energy_price_per_kwh = settings.energy_price_per_kwh;
  cost.currency = settings.currency;
  if (duration_s) cost.duration_h = *duration_s / 3600.0;
  cost.energy_kwh = energy_kwh_pue;
  report[rk::cost] = cost_json(cost);
}

}  // namespace trainmeter::detail
