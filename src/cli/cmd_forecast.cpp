// `trainmeter forecast`: the predicted duration, energy, carbon and cost of a whole run from a
// partial one, with a 95% interval from the observed spread (see carbon/forecast.hpp).
#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "carbon/forecast.hpp"
#include "cli/cli.hpp"
#include "export/recover.hpp"
#include "report/units.hpp"
#include "trainmeter/config.hpp"

namespace trainmeter::cli {
namespace {

// A predicted figure and its interval, each formatted by `text` (adaptive units).
template <typename Format>
std::string range(const detail::Predicted& p, Format text) {
  if (!p.value) return "not measured";
  std::string s = text(*p.value);
  if (p.low && p.high) s += fmt::format("  (95%: {} to {})", text(*p.low), text(*p.high));
  return s;
}

// A JSON Lines stream starts with a {"type": "header", ...} line; a report is one JSON object.
bool is_stream(const std::string& path) {
  std::ifstream in(path);
  std::string first;
  if (!in || !std::getline(in, first)) return false;
  const auto j = nlohmann::json::parse(first, nullptr, false);
  return j.is_object() && j.value("type", std::string()) == "header";
}

// A report, or the report rebuilt from a live or crashed run's stream (steps, phases, config).
nlohmann::json load_report_or_stream(const std::string& path) {
  if (!is_stream(path)) return load_valid_report(path);
  auto recovered = detail::recover_stream(path);
  if (!recovered.report) throw CliError{recovered.error};
  return std::move(*recovered.report);
}

// config.total_steps as the report or stream header recorded it (text, "0" = unknown).
std::optional<long long> configured_total(const nlohmann::json& report) {
  const auto c = report.find(rk::config);
  if (c == report.end() || !c->is_object()) return std::nullopt;
  const auto t = c->find("total_steps");
  if (t == c->end() || !t->is_string()) return std::nullopt;
  char* end = nullptr;
  const std::string& text = t->get_ref<const std::string&>();
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n <= 0) return std::nullopt;
  return n;
}

}  // namespace

int cmd_forecast(const std::vector<std::string>& args) {
  Args a("forecast", "(REPORT.json | STREAM.jsonl) [--total-steps N] [--phase NAME] [--json]");
  a.option("--total-steps",
           "steps of the phase in the whole run (default: run.total_steps_expected)")
      .option("--phase", "phase to extrapolate (default train)")
      .flag("--json", "print the forecast as JSON");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string path = a.positional()[0];
  const nlohmann::json report = load_report_or_stream(path);

  long long total = 0;
  if (const auto n = a.integer("--total-steps")) {
    total = *n;
  } else if (report.contains(rk::run) && report[rk::run].is_object() &&
             report[rk::run].contains("total_steps_expected") &&
             report[rk::run]["total_steps_expected"].is_number_unsigned()) {
    total = report[rk::run]["total_steps_expected"].get<long long>();
  } else if (const auto configured = configured_total(report)) {
    total = *configured;  // a stream's header, or a report written before total_steps_expected
  } else {
    throw CliError{
        "--total-steps N is required (the report records no expected total: set "
        "TRAINMETER_TOTAL_STEPS or Session::set_total_steps() in the program)"};
  }
  if (total <= 0 || double(total) > config_key("total_steps").max_value)
    throw CliError{fmt::format("--total-steps {}: accepted: an integer from 1 to {}", total,
                               config_key("total_steps").max_value)};

  detail::ForecastObservation obs;
  detail::Forecast f;
  try {
    obs = detail::observation_from_report(report, a.get("--phase", "train"));
    f = detail::forecast_run(obs, static_cast<std::uint64_t>(total));
  } catch (const std::invalid_argument& e) {
    throw CliError{fmt::format("{}: {}", path, e.what())};
  }

  if (a.has("--json")) {
    nlohmann::json out = detail::forecast_json(f, obs);
    out["report"] = path;
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("Forecast for {} '{}' steps: {} done, {} remaining, from {} observed steps\n",
             f.total_steps, obs.phase, f.steps_done, f.steps_remaining, f.observed_steps);
  auto seconds = [](double s) { return detail::format_duration_s(s); };
  auto kwh = [](double e) { return detail::format_energy_j(e * 3.6e6); };
  auto co2e = [](double kg) { return detail::format_co2e_kg(kg); };
  auto money = [&](double v) { return fmt::format("{:.4g} {}", v, obs.currency); };
  fmt::print("  step time  {} mean{}\n", seconds(f.step_mean_s),
             f.step_stddev_s ? fmt::format(", {} stddev", seconds(*f.step_stddev_s))
                             : std::string(", spread unknown"));
  fmt::print("  duration   {}\n", range(f.duration_s, seconds));
  fmt::print("  energy     {}  [{}]\n", range(f.energy_kwh, kwh), f.energy_method);
  fmt::print("  carbon     {}  at {:.4g} g/kWh ({}), PUE {}\n", range(f.co2e_kg, co2e),
             obs.intensity_g_per_kwh, obs.intensity_source, obs.pue);
  if (obs.price_per_hour || obs.energy_price_per_kwh) {
    fmt::print("  cost       {}\n", range(f.cost_total, money));
  }
  fmt::print(
      "Method: remaining steps x observed mean added to the elapsed time and energy; 95% interval "
      "+-1.96 s sqrt(r (1 + r/n)) (normal approximation, independent steps).\n");
  return kExitOk;
}

}  // namespace trainmeter::cli
