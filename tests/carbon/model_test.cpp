// The carbon, cost, estimate and forecast arithmetic against hand-computed figures.
#include <catch2/catch.hpp>
#include <stdexcept>

#include "carbon/forecast.hpp"
#include "carbon/model.hpp"

using namespace trainmeter::detail;
using nlohmann::json;

TEST_CASE("carbon_kg multiplies energy, PUE and intensity", "[carbon][model]") {
  // 2.5 kWh x 1.2 x 400 g/kWh = 1200 g.
  CHECK(carbon_kg(2.5, 1.2, 400) == Approx(1.2));
  CHECK(carbon_kg(0, 1.5, 400) == 0);
  CHECK(carbon_kg(1, 1, 475) == Approx(0.475));
}

TEST_CASE("equivalents carry their constants", "[carbon][model]") {
  const json e = equivalents_json(1.2);
  CHECK(e["car_km"].get<double>() == Approx(1200.0 / 175.0));
  CHECK(e["car_g_per_km"] == 175.0);
  // 126,000 lb x 0.45359237 kg/lb = 57,152.63862 kg.
  CHECK(e["car_lifetime_kg"].get<double>() == Approx(57152.63862));
  CHECK(e["car_lifetime_lb"] == 126000.0);
  CHECK(e["car_lifetime_fraction"].get<double>() == Approx(1.2 / 57152.63862));
  CHECK_FALSE(e["car_source"].get<std::string>().empty());
  CHECK(e["car_lifetime_source"].get<std::string>().find("Strubell") != std::string::npos);
  const json none = equivalents_json(std::nullopt);
  CHECK(none["car_km"].is_null());
  CHECK(none["car_lifetime_fraction"].is_null());
  CHECK(none["car_g_per_km"] == 175.0);
}

TEST_CASE("cost: compute, energy and total", "[carbon][cost]") {
  CostInputs in;
  in.price_per_hour = 3.0;
  in.energy_price_per_kwh = 0.25;
  in.duration_h = 2.0;
  in.energy_kwh = 3.0;
  auto r = compute_cost(in);
  CHECK(*r.compute == Approx(6.0));
  CHECK(*r.energy == Approx(0.75));
  CHECK(*r.total == Approx(6.75));

  SECTION("a part without a price is left out of the total") {
    in.energy_price_per_kwh.reset();
    r = compute_cost(in);
    CHECK_FALSE(r.energy);
    CHECK(*r.total == Approx(6.0));
  }
  SECTION("a priced part whose quantity is unknown makes the total unknown") {
    in.energy_kwh.reset();
    r = compute_cost(in);
    CHECK(*r.compute == Approx(6.0));
    CHECK_FALSE(r.energy);
    CHECK_FALSE(r.total);
    const json j = cost_json(in);
    CHECK(j["energy"].is_null());
    CHECK(j["total"].is_null());
    CHECK(j["inputs"]["energy_kwh"].is_null());
  }
  SECTION("no price at all: the section is null") {
    CostInputs none;
    none.duration_h = 1.0;
    CHECK(cost_json(none).is_null());
  }
  SECTION("JSON has every input") {
    in.currency = "EUR";
    const json j = cost_json(in);
    CHECK(j["currency"] == "EUR");
    CHECK(j["total"].get<double>() == Approx(6.75));
    CHECK(j["inputs"]["price_per_hour"] == 3.0);
    CHECK(j["inputs"]["energy_price_per_kwh"] == 0.25);
    CHECK(j["inputs"]["duration_h"] == 2.0);
    CHECK(j["inputs"]["energy_kwh"] == 3.0);
  }
}

TEST_CASE("estimate energy, Green Algorithms style", "[carbon][estimate]") {
  // 1.5 x 10 h x (65 + 10 + 4 x 300) W / 1000 = 19.125 kWh.
  CHECK(estimate_energy_kwh(10, 1.5, 65, 10, 4, 300) == Approx(19.125));
  CHECK(estimate_energy_kwh(2, 1.0, 100, 0, 0, 0) == Approx(0.2));
}

TEST_CASE("sample statistics", "[carbon][forecast]") {
  auto s = sample_stats({2, 4, 4, 4, 5, 5, 7, 9});
  CHECK(s.n == 8);
  CHECK(s.mean == Approx(5.0));
  // Sum of squared deviations 32, n - 1 = 7.
  CHECK(*s.stddev == Approx(std::sqrt(32.0 / 7.0)));
  CHECK_FALSE(sample_stats({1.0}).stddev);
  CHECK(sample_stats({}).n == 0);
}

TEST_CASE("forecast of a run from its first steps", "[carbon][forecast]") {
  ForecastObservation obs;
  obs.step_s = {4, 0.5, 0.1};
  obs.step_energy_j = SampleStats{4, 50.0, 5.0};
  obs.steps_done = 5;
  obs.elapsed_s = 10;
  obs.energy_j = 1000;
  obs.pue = 1.2;
  obs.intensity_g_per_kwh = 400;
  obs.price_per_hour = 3.6;
  obs.energy_price_per_kwh = 0.5;

  const Forecast f = forecast_run(obs, 105);
  CHECK(f.steps_remaining == 100);
  // 10 s + 100 x 0.5 s; half-width 1.96 x 0.1 x sqrt(100 x (1 + 100/4)) = 9.99389460...
  CHECK(*f.duration_s.value == Approx(60.0));
  CHECK(*f.duration_s.low == Approx(50.0061053968912));
  CHECK(*f.duration_s.high == Approx(69.9938946031088));
  CHECK(f.energy_method == "per_step_energy");
  // 1000 J + 100 x 50 J = 6000 J; half-width 1.96 x 5 x sqrt(2600) = 499.69473...
  CHECK(*f.energy_kwh.value == Approx(6000.0 / 3.6e6));
  CHECK(*f.energy_kwh.high == Approx(6499.69473015544 / 3.6e6));
  // 6000 J = 1/600 kWh; x 1.2 x 400 / 1000 = 0.0008 kg.
  CHECK(*f.co2e_kg.value == Approx(0.0008));
  CHECK(*f.co2e_kg.high == Approx(0.0008666259640207252));
  // 3.6/h x 60 s = 0.06; 0.5/kWh x 1/600 kWh x 1.2 = 0.001.
  CHECK(*f.cost_total.value == Approx(0.061));
  CHECK(*f.cost_total.high == Approx(0.07107717705813471));

  const json j = forecast_json(f, obs);
  CHECK(j["predicted"]["duration_s"]["value"].get<double>() == Approx(60.0));
  CHECK(j["inputs"]["pue"] == 1.2);
  CHECK(j["method"].get<std::string>().find("1.96") != std::string::npos);

  SECTION("without per-step energy: average power over the predicted duration") {
    obs.step_energy_j.reset();
    const Forecast g = forecast_run(obs, 105);
    CHECK(g.energy_method == "average_power");
    // 1000 J over 10 s = 100 W; x 60 s = 6000 J, bounds scale with the duration bounds.
    CHECK(*g.energy_kwh.value == Approx(6000.0 / 3.6e6));
    CHECK(*g.energy_kwh.low == Approx(100.0 * 50.0061053968912 / 3.6e6));
  }
  SECTION("energy not measured: energy, carbon null; duration still predicted") {
    obs.energy_j.reset();
    const Forecast g = forecast_run(obs, 105);
    CHECK(g.energy_method == "not_measured");
    CHECK_FALSE(g.energy_kwh.value);
    CHECK_FALSE(g.co2e_kg.value);
    const json k = forecast_json(g, obs);
    CHECK(k["predicted"]["co2e_kg"]["value"].is_null());
  }
  SECTION("one observed step: no spread, no interval") {
    obs.step_s = {1, 0.5, std::nullopt};
    obs.step_energy_j = SampleStats{1, 50.0, std::nullopt};
    const Forecast g = forecast_run(obs, 105);
    CHECK(*g.duration_s.value == Approx(60.0));
    CHECK_FALSE(g.duration_s.low);
    CHECK_FALSE(g.cost_total.low);
  }
  SECTION("bad requests") {
    CHECK_THROWS_AS(forecast_run(obs, 4), std::invalid_argument);
    obs.step_s = {};
    CHECK_THROWS_AS(forecast_run(obs, 105), std::invalid_argument);
  }
}

TEST_CASE("forecast observation from a report", "[carbon][forecast]") {
  json report = json::parse(R"({
    "run": {"duration_s": 10.0},
    "phases": {"train": {"steps": 5, "warmup_steps": 1,
                         "step_time_ns": {"mean": 5e8, "stddev": 1e8}}},
    "energy": {"total_j": 1000.0, "total_kwh": 0.000277778, "pue": 1.2},
    "carbon": {"intensity_g_per_kwh": 400.0, "intensity_source": "country"},
    "cost": {"currency": "EUR", "inputs": {"price_per_hour": 3.6, "energy_price_per_kwh": null}},
    "steps": [
      {"phase": "train", "warmup": true, "energy_j": 500.0},
      {"phase": "train", "warmup": false, "energy_j": 45.0},
      {"phase": "train", "warmup": false, "energy_j": 55.0},
      {"phase": "eval", "warmup": false, "energy_j": 999.0}
    ]})");
  const ForecastObservation obs = observation_from_report(report, "train");
  CHECK(obs.steps_done == 5);
  CHECK(obs.step_s.n == 4);
  CHECK(obs.step_s.mean == Approx(0.5));
  CHECK(*obs.step_s.stddev == Approx(0.1));
  REQUIRE(obs.step_energy_j);
  CHECK(obs.step_energy_j->n == 2);
  CHECK(obs.step_energy_j->mean == Approx(50.0));
  CHECK(*obs.energy_j == 1000.0);
  CHECK(obs.pue == 1.2);
  CHECK(obs.intensity_g_per_kwh == 400.0);
  CHECK(obs.intensity_source == "country");
  CHECK(*obs.price_per_hour == 3.6);
  CHECK_FALSE(obs.energy_price_per_kwh);
  CHECK(obs.currency == "EUR");
  CHECK_THROWS_AS(observation_from_report(report, "infer"), std::invalid_argument);
  report["phases"]["train"]["step_time_ns"] = nullptr;
  CHECK_THROWS_AS(observation_from_report(report, "train"), std::invalid_argument);
}
