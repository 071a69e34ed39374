// The carbon component driven directly with hand-made reports: known energies and intensities
// in, hand-computed kg and cost out; configuration errors at construction.
#include <catch2/catch.hpp>
#include <string>

#include "base/component.hpp"
#include "carbon/carbon.hpp"
#include "support/test_support.hpp"
#include "trainmeter/error.hpp"

using namespace trainmeter::detail;
using Catch::Matchers::Contains;
using nlohmann::json;
using trainmeter::Config;
using trainmeter::Error;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;

namespace {

constexpr std::int64_t kSec = 1000000000;
constexpr std::int64_t kT10 = (20785LL * 86400 + 36000) * kSec;  // 2026-11-28T10:00:00Z

json report_with_energy(json energy, double duration_s = 5400.0) {
  json r;
  r["run"] = {{"start_utc", "2026-11-28T10:00:00.000Z"}, {"duration_s", duration_s}};
  r["energy"] = std::move(energy);
  r["carbon"] = nullptr;
  r["cost"] = nullptr;
  r["steps"] = json::array();
  return r;
}

json contribute(RunContext& ctx, json report) {
  auto component = make_carbon_component(ctx);
  CHECK(std::string(component->name()) == "carbon");
  component->contribute(report);
  return report;
}

std::string construction_error(const Config& c) {
  RunContext ctx;
  ctx.config = c;
  try {
    make_carbon_component(ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("country intensity, PUE and cost from recorded energy", "[carbon][component]") {
  RunContext ctx;
  ctx.config.country = "FR";
  ctx.config.pue = 1.5;
  ctx.config.price_per_hour = 2.0;
  ctx.config.energy_price_per_kwh = 0.3;
  ctx.config.currency = "EUR";
  // 7.2 MJ = 2 kWh over 1.5 h.
  const json r = contribute(ctx, report_with_energy({{"total_j", 7.2e6}, {"total_kwh", 2.0}}));

  CHECK(r["energy"]["pue"] == 1.5);
  CHECK(r["energy"]["total_kwh_with_pue"].get<double>() == Approx(3.0));
  const json& c = r["carbon"];
  CHECK(c["intensity_source"] == "country");
  CHECK(c["intensity_g_per_kwh"] == 56.039);
  CHECK(c["region"] == "FR");
  CHECK(c["region_name"] == "France");
  CHECK(c["data_year"] == 2023);
  CHECK_FALSE(c["data_source"].get<std::string>().empty());
  CHECK(c["pue"] == 1.5);
  CHECK(c["energy_kwh"].get<double>() == Approx(2.0));
  // 2 kWh x 1.5 x 56.039 g/kWh = 168.117 g.
  CHECK(c["co2e_kg"].get<double>() == Approx(0.168117));
  CHECK(c["equivalents"]["car_km"].get<double>() == Approx(168.117 / 175.0));
  CHECK(c["time_series"].is_null());
  // A reader recomputes the figure from the report alone.
  CHECK(c["co2e_kg"].get<double>() ==
        Approx(r["energy"]["total_kwh"].get<double>() * c["pue"].get<double>() *
               c["intensity_g_per_kwh"].get<double>() / 1000.0));

  const json& cost = r["cost"];
  CHECK(cost["currency"] == "EUR");
  CHECK(cost["compute"].get<double>() == Approx(3.0));  // 2.0/h x 1.5 h
  CHECK(cost["energy"].get<double>() == Approx(0.9));   // 0.3/kWh x 3 kWh (with PUE)
  CHECK(cost["total"].get<double>() == Approx(3.9));
  CHECK(cost["inputs"]["duration_h"].get<double>() == Approx(1.5));
  CHECK(cost["inputs"]["energy_kwh"].get<double>() == Approx(3.0));
}

TEST_CASE("no energy source: carbon numbers null, intensity still reported",
          "[carbon][component]") {
  RunContext ctx;
  ctx.config.cloud_region = "gcp:europe-west9";
  ctx.config.price_per_hour = 4.0;
  const json r = contribute(ctx, report_with_energy(nullptr, 1800.0));
  CHECK(r["energy"].is_null());
  const json& c = r["carbon"];
  CHECK(c["intensity_source"] == "cloud_region");
  CHECK(c["intensity_g_per_kwh"] == 34.0);
  CHECK(c["region"] == "gcp:europe-west9");
  CHECK(c["data_year"] == 2024);
  CHECK(c["pue"] == 1.0);
  CHECK(c["energy_kwh"].is_null());
  CHECK(c["co2e_kg"].is_null());
  CHECK(c["equivalents"]["car_km"].is_null());
  CHECK(r["cost"]["compute"].get<double>() == Approx(2.0));
  CHECK(r["cost"]["energy"].is_null());
  CHECK(r["cost"]["total"].get<double>() == Approx(2.0));
}

TEST_CASE("energy section without a total", "[carbon][component]") {
  RunContext ctx;
  ctx.config.energy_price_per_kwh = 0.2;
  const json r =
      contribute(ctx, report_with_energy({{"total_j", nullptr}, {"total_kwh", nullptr}}));
  CHECK(r["energy"]["pue"] == 1.0);
  CHECK(r["energy"]["total_kwh_with_pue"].is_null());
  CHECK(r["carbon"]["co2e_kg"].is_null());
  CHECK(r["carbon"]["intensity_source"] == "world_default");
  CHECK(r["carbon"]["intensity_g_per_kwh"] == 475.0);
  CHECK(r["carbon"]["data_year"] == 2019);
  // Energy priced but not measured: that part and the total are unknown, not 0.
  CHECK(r["cost"]["energy"].is_null());
  CHECK(r["cost"]["total"].is_null());
}

TEST_CASE("no price: cost is null", "[carbon][component]") {
  RunContext ctx;
  const json r = contribute(ctx, report_with_energy({{"total_j", 3.6e6}}));
  CHECK(r["cost"].is_null());
  // World default: 1 kWh x 475 g = 0.475 kg.
  CHECK(r["carbon"]["co2e_kg"].get<double>() == Approx(0.475));
}

TEST_CASE("resolution order: explicit beats series, region, country", "[carbon][component]") {
  TempDir dir;
  write_file(dir / "g.csv", "2026-11-28T10:00:00Z,100\n");
  Config c;
  c.carbon_intensity = 250.0;
  c.carbon_intensity_file = dir / "g.csv";
  c.cloud_region = "aws:eu-west-3";
  c.country = "DE";
  auto choice = resolve_intensity(c);
  CHECK(choice.source == "explicit");
  CHECK(choice.g_per_kwh == 250.0);
  // The location given beside an explicit value still names the region.
  CHECK(*choice.region == "aws:eu-west-3");
  c.carbon_intensity.reset();
  CHECK(resolve_intensity(c).source == "time_series");
  c.carbon_intensity_file.clear();
  CHECK(resolve_intensity(c).source == "cloud_region");
  CHECK(resolve_intensity(c).g_per_kwh == 51.28);
  c.cloud_region.clear();
  CHECK(resolve_intensity(c).source == "country");
  CHECK(resolve_intensity(c).g_per_kwh == 380.95);
  c.country.clear();
  CHECK(resolve_intensity(c).source == "world_default");
}

TEST_CASE("time series with a step change mid-run, weighted by step energy",
          "[carbon][component]") {
  TempDir dir;
  write_file(dir / "grid.csv",
             "timestamp_utc,g_per_kwh\n2026-11-28T09:00:00Z,700\n2026-11-28T10:00:00Z,100\n"
             "2026-11-28T10:30:00Z,500\n2026-11-28T12:00:00Z,900\n");
  RunContext ctx;
  ctx.config.carbon_intensity_file = dir / "grid.csv";
  ctx.config.pue = 1.5;
  ctx.start_unix_ns = kT10;
  // One hour, 1 kWh in total: step 0 (first half hour) 1.0 MJ, step 1 (second half) 2.0 MJ,
  // and 0.6 MJ outside steps, spread uniformly (0.3 MJ in each half).
  json report = report_with_energy({{"total_j", 3.6e6}, {"total_kwh", 1.0}}, 3600.0);
  report["steps"] = json::array({{{"index", 0},
                                  {"phase", "train"},
                                  {"start_offset_ns", 0},
                                  {"wall_ns", 1800 * kSec},
                                  {"energy_j", 1.0e6}},
                                 {{"index", 1},
                                  {"phase", "train"},
                                  {"start_offset_ns", 1800 * kSec},
                                  {"wall_ns", 1800 * kSec},
                                  {"energy_j", 2.0e6}}});
  const json r = contribute(ctx, report);
  const json& c = r["carbon"];
  CHECK(c["intensity_source"] == "time_series");
  // At 100 g: 1.3 MJ; at 500 g: 2.3 MJ -> (1.3 x 100 + 2.3 x 500) / 3.6 = 355.555... g/kWh.
  CHECK(c["intensity_g_per_kwh"].get<double>() == Approx(1280.0 / 3.6));
  // 1 kWh x 1.5 x 355.555 g = 0.533333 kg.
  CHECK(c["co2e_kg"].get<double>() == Approx(0.5333333333));
  const json& ts = c["time_series"];
  CHECK(ts["file"] == dir / "grid.csv");
  CHECK(ts["samples"] == 4);
  CHECK(ts["samples_in_run"] == 2);
  CHECK(ts["weighting"] == "step_energy");
  CHECK(ts["energy_weighted_mean_g_per_kwh"].get<double>() == Approx(1280.0 / 3.6));
  CHECK(ts["time_weighted_mean_g_per_kwh"].get<double>() == Approx(300.0));
  CHECK(ts["energy_before_first_sample_fraction"] == 0.0);
  // 10:30 is the last sample before 12:00: nothing after the last sample.
  CHECK(ts["energy_after_last_sample_fraction"] == 0.0);
  CHECK(ctx.diagnostics.count("carbon", diag::kUnavailable) == 0);

  SECTION("without per-step energy: uniform power") {
    report["steps"] = json::array();
    const json u = contribute(ctx, report);
    CHECK(u["carbon"]["time_series"]["weighting"] == "uniform_power");
    CHECK(u["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(300.0));
    CHECK(u["carbon"]["co2e_kg"].get<double>() == Approx(0.45));
  }
  SECTION("energy not measured: time-weighted mean, no kg") {
    report["energy"] = nullptr;
    const json u = contribute(ctx, report);
    CHECK(u["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(300.0));
    CHECK(u["carbon"]["co2e_kg"].is_null());
    CHECK(u["carbon"]["time_series"]["energy_weighted_mean_g_per_kwh"].is_null());
  }
  SECTION("run start taken from run.start_utc when the context has none (recompute)") {
    CarbonSettings s = carbon_settings_from_config(ctx.config);
    json copy = report;
    apply_carbon(copy, s, std::nullopt, nullptr);
    CHECK(copy["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(1280.0 / 3.6));
  }
}

TEST_CASE("series starting after the run: first value used, counted diagnostic",
          "[carbon][component]") {
  TempDir dir;
  write_file(dir / "grid.csv", "2026-11-28T10:30:00Z,200\n");
  RunContext ctx;
  ctx.config.carbon_intensity_file = dir / "grid.csv";
  ctx.start_unix_ns = kT10;
  const json r = contribute(ctx, report_with_energy({{"total_j", 3.6e6}}, 3600.0));
  CHECK(r["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(200.0));
  CHECK(r["carbon"]["time_series"]["energy_before_first_sample_fraction"].get<double>() ==
        Approx(0.5));
  CHECK(ctx.diagnostics.count("carbon", diag::kUnavailable) == 1);
}

TEST_CASE("series ending before the run: last value held, counted diagnostic",
          "[carbon][component]") {
  TempDir dir;
  // Samples every 10 min up to 10:10; the run lasts until 11:00 (beyond 10:10 + 10 min).
  write_file(dir / "grid.csv", "2026-11-28T10:00:00Z,100\n2026-11-28T10:10:00Z,400\n");
  RunContext ctx;
  ctx.config.carbon_intensity_file = dir / "grid.csv";
  ctx.start_unix_ns = kT10;
  const json r = contribute(ctx, report_with_energy({{"total_j", 3.6e6}}, 3600.0));
  // Uniform power: 10 min at 100, 50 min at 400 -> (100 + 5 x 400) / 6 = 350.
  CHECK(r["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(350.0));
  CHECK(r["carbon"]["time_series"]["energy_after_last_sample_fraction"].get<double>() ==
        Approx(50.0 / 60.0));
  CHECK(ctx.diagnostics.count("carbon", diag::kUnavailable) == 1);
}

TEST_CASE("concurrent steps whose energies exceed the total keep only their shape",
          "[carbon][component]") {
  json report = report_with_energy({{"total_j", 100.0}}, 10.0);
  report["steps"] =
      json::array({{{"start_offset_ns", 0}, {"wall_ns", 5 * kSec}, {"energy_j", 150.0}},
                   {{"start_offset_ns", 5 * kSec}, {"wall_ns", 5 * kSec}, {"energy_j", 50.0}}});
  std::string method;
  auto iv = energy_intervals(report, 100.0, 0, 10 * kSec, &method);
  CHECK(method == "step_energy");
  REQUIRE(iv.size() == 2);
  CHECK(iv[0].energy_j == Approx(75.0));
  CHECK(iv[1].energy_j == Approx(25.0));
}

TEST_CASE("a failing contribution becomes a diagnostic, not an exception", "[carbon][component]") {
  RunContext ctx;
  json report = "not an object";
  auto component = make_carbon_component(ctx);
  component->contribute(report);
  CHECK(ctx.diagnostics.count("carbon", diag::kError) == 1);
}

TEST_CASE("bad configuration throws at construction, naming key and value", "[carbon][config]") {
  Config c;
  c.country = "XX";
  std::string e = construction_error(c);
  CHECK_THAT(e, Contains("TRAINMETER_COUNTRY=XX") && Contains("alpha-2 or alpha-3"));

  c = Config{};
  c.cloud_region = "gcp:europe-west99";
  e = construction_error(c);
  CHECK_THAT(e, Contains("TRAINMETER_CLOUD_REGION=gcp:europe-west99") &&
                    Contains("known gcp regions") && Contains("europe-west9"));
  c.cloud_region = "ibm:dallas";
  CHECK_THAT(construction_error(c), Contains("provider one of aws, azure, gcp"));

  c = Config{};
  c.carbon_intensity = 0.0;
  CHECK_THAT(construction_error(c),
             Contains("TRAINMETER_CARBON_INTENSITY=0") && Contains("from 0.001 to 2000"));
  c.carbon_intensity = 2500.0;
  CHECK_THAT(construction_error(c), Contains("TRAINMETER_CARBON_INTENSITY=2500"));
  c.carbon_intensity = -1.0;
  CHECK_FALSE(construction_error(c).empty());

  c = Config{};
  c.pue = 0.9;
  CHECK_THAT(construction_error(c), Contains("TRAINMETER_PUE=0.9") && Contains("from 1.0"));

  c = Config{};
  c.price_per_hour = -2.0;
  CHECK_THAT(construction_error(c), Contains("TRAINMETER_PRICE_PER_HOUR=-2"));

  TempDir dir;
  write_file(dir / "bad.csv", "2026-11-28T10:00:00Z,100\n2026-11-28T09:59:00Z,120\n");
  c = Config{};
  c.carbon_intensity_file = dir / "bad.csv";
  CHECK_THAT(construction_error(c), Contains(dir / "bad.csv") && Contains("line 2"));
  c.carbon_intensity_file = dir / "absent.csv";
  CHECK_THAT(construction_error(c), Contains("cannot read"));

  SECTION("every problem is reported at once, even for keys a higher one overrides") {
    Config many;
    many.carbon_intensity = 300.0;  // would win, yet the typo below is still reported
    many.country = "ZZZ";
    many.pue = 0.5;
    e = construction_error(many);
    CHECK_THAT(e, Contains("TRAINMETER_COUNTRY=ZZZ") && Contains("TRAINMETER_PUE=0.5"));
  }
}
