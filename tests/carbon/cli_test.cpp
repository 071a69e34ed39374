// The planning commands (estimate, forecast, recompute) on good and bad input: hand-computed
// figures out, exit codes, one-line errors; and one end-to-end run through a real Session whose
// report is validated and then recomputed.
#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "support/test_support.hpp"
#include "trainmeter/session.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using nlohmann::json;
using trainmeter::test::run_cli;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;

namespace {

json cli_json(const std::string& args) {
  auto r = run_cli(args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.output);
}

// A bad invocation: exit code 2 and exactly one line naming the command.
void bad(const std::string& args, const std::string& message) {
  auto r = run_cli(args);
  INFO(args << "\n" << r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, StartsWith("trainmeter "));
  CHECK_THAT(r.output, Contains(message));
  CHECK(r.output.find('\n') == r.output.size() - 1);
}

// A partial run: 5 train steps (1 warm-up) of 0.5 s mean, 0.1 s stddev, in 10 s; 1000 J so far;
// per-step energies 45 and 55 J (mean 50, stddev 7.0710678). forecast and recompute validate
// their input, so these figures are laid over a real, schema-valid report of a Session.
json partial_report() {
  static const json base = [] {
    TempDir dir;
    trainmeter::Config c;
    c.output = dir / "base.json";
    c.run_name = "partial";
    c.energy_sources = {"estimate"};
    c.cpu_tdp_w = 100.0;
    c.powercap_root = dir / "no-powercap";
    c.perf_event_root = dir / "no-perf";
    c.nvml_library = dir / "no-nvml.so";
    {
      trainmeter::Session session(c);
      for (int i = 0; i < 5; ++i) auto st = session.step(1);
    }
    return trainmeter::test::read_json(dir / "base.json");
  }();
  const json p = json::parse(R"({
    "run": {"duration_s": 10.0, "start_utc": "2026-11-28T10:00:00.000Z"},
    "phase": {"steps": 5, "warmup_steps": 1, "samples": 4, "tokens": 0, "duration_s": 2.0,
              "step_time_ns": {"mean": 5e8, "stddev": 1e8, "min": 4e8, "p50": 5e8, "p90": 6e8,
                               "p95": 6e8, "p99": 6e8, "max": 6e8, "percentiles_exact": true},
              "cpu_time_ns": null, "samples_per_s": 2.0, "tokens_per_s": null, "loss": null},
    "energy": {"total_j": 1000.0, "total_kwh": 0.0002777777777777778, "pue": 1.2,
               "total_kwh_with_pue": 0.0003333333333333333},
    "carbon": {"intensity_g_per_kwh": 400.0, "intensity_source": "explicit", "region": null,
               "region_name": null, "data_source": "given by the user", "data_year": null,
               "pue": 1.2, "energy_kwh": 0.0002777777777777778,
               "energy_kwh_with_pue": 0.0003333333333333333, "co2e_kg": 0.00013333333333333334,
               "time_series": null},
    "cost": {"compute": 0.01, "energy": null, "total": 0.01, "currency": "USD",
             "formula": "compute + energy",
             "inputs": {"price_per_hour": 3.6, "energy_price_per_kwh": null,
                        "duration_h": 0.002777777777777778, "energy_kwh": 0.0003333333333333333}},
    "steps": [
      {"index": 0, "phase": "train", "warmup": true, "start_offset_ns": 0, "wall_ns": 1000000000, "energy_j": 500.0, "samples": 1, "tokens": 0},
      {"index": 1, "phase": "train", "warmup": false, "start_offset_ns": 1000000000, "wall_ns": 400000000, "energy_j": 45.0, "samples": 1, "tokens": 0},
      {"index": 2, "phase": "train", "warmup": false, "start_offset_ns": 2000000000, "wall_ns": 600000000, "energy_j": 55.0, "samples": 1, "tokens": 0}
    ]})");
  json r = base;
  r["run"]["duration_s"] = p["run"]["duration_s"];
  r["run"]["start_utc"] = p["run"]["start_utc"];
  r["phases"] = {{"train", p["phase"]}};
  r["energy"].update(p["energy"]);
  r["carbon"].update(p["carbon"]);
  r["cost"] = p["cost"];
  r["steps"] = p["steps"];
  return r;
}

}  // namespace

TEST_CASE("estimate: hand-computed energy, carbon and cost", "[carbon][cli]") {
  // 1.5 x 10 h x (65 + 10 + 4 x 300) W / 1000 = 19.125 kWh; x 400 g = 7.65 kg; 3 USD/h x 10 h.
  json j = cli_json(
      "estimate --hours 10 --devices 4 --device-power-w 300 --cpu-power-w 65 --ram-power-w 10 "
      "--pue 1.5 --intensity 400 --price-per-hour 3 --json");
  CHECK(j["energy_kwh"].get<double>() == Approx(19.125));
  CHECK(j["co2e_kg"].get<double>() == Approx(7.65));
  CHECK(j["cost_usd"].get<double>() == Approx(30.0));
  CHECK(j["inputs"]["pue"] == 1.5);
  CHECK(j["inputs"]["devices"] == 4);
  CHECK(j["inputs"]["intensity_source"] == "explicit");
  CHECK(j["equivalents"]["car_km"].get<double>() == Approx(7650.0 / 175.0));

  // 1 kW for 1 h in France (56.039 g/kWh), no price: cost null.
  j = cli_json("estimate --hours 1 --device-power-w 1000 --country FRA --json");
  CHECK(j["energy_kwh"].get<double>() == Approx(1.0));
  CHECK(j["co2e_kg"].get<double>() == Approx(0.056039));
  CHECK(j["cost_usd"].is_null());
  CHECK(j["inputs"]["region"] == "FR");
  CHECK(j["inputs"]["intensity_data_year"] == 2023);

  // Cloud region, energy price: 2 h x 500 W = 1 kWh at 34 g; 0.2 USD/kWh.
  j = cli_json(
      "estimate --hours 2 --cpu-power-w 500 --region gcp:europe-west9 "
      "--energy-price-per-kwh 0.2 --json");
  CHECK(j["co2e_kg"].get<double>() == Approx(0.034));
  CHECK(j["cost_usd"].get<double>() == Approx(0.2));

  // World default when no location is given.
  j = cli_json("estimate --hours 1 --ram-power-w 1000 --json");
  CHECK(j["co2e_kg"].get<double>() == Approx(0.475));
  CHECK(j["inputs"]["intensity_source"] == "world_default");

  auto text = run_cli("estimate --hours 1 --device-power-w 1000 --price-per-hour 2");
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Contains("1.00 kWh") && Contains("475 g CO2e") && Contains("2.00 USD"));
}

// Expected power typed from data/gpu_tdp.tsv's cited figure: "A100" matches the row "NVIDIA
// A100 SXM4", 400 W (NVIDIA A100 datasheet, 2021); data/cpu_tdp.tsv: "Intel Xeon E5-2680 v4",
// 120 W (CodeCarbon cpu_power.csv v3.3.0). Not looked up through the code under test.
TEST_CASE("estimate: --gpu and --cpu from the TDP tables", "[carbon][cli]") {
  json j = cli_json("estimate --hours 10 --gpu A100 --devices 2 --intensity 100 --json");
  CHECK(j["inputs"]["device_power_w"].get<double>() == 400.0);
  CHECK(j["energy_kwh"].get<double>() == Approx(8.0));  // 10 h x 2 x 400 W
  CHECK(j["co2e_kg"].get<double>() == Approx(0.8));     // 8 kWh x 100 g/kWh
  CHECK_THAT(j["inputs"]["device_power_source"].get<std::string>(),
             Contains("NVIDIA A100 SXM4") && Contains("NVIDIA A100 datasheet"));

  j = cli_json(
      "estimate --hours 3 --cpu 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz' --intensity 200 "
      "--json");
  CHECK(j["inputs"]["cpu_power_w"].get<double>() == 120.0);
  CHECK(j["inputs"]["cpu_model"] == "Intel Xeon E5-2680 v4");
  CHECK_THAT(j["inputs"]["cpu_power_source"].get<std::string>(),
             Contains("TDP of Intel Xeon E5-2680 v4") && Contains("CodeCarbon cpu_power.csv"));
  CHECK(j["inputs"]["devices"] == 0);
  CHECK(j["energy_kwh"].get<double>() == Approx(0.36));  // 3 h x 120 W
  CHECK(j["co2e_kg"].get<double>() == Approx(0.072));    // 0.36 kWh x 200 g/kWh
  const auto text = run_cli("estimate --hours 3 --cpu 'Intel Xeon E5-2680 v4' --intensity 200");
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Contains("120 W CPU"));

  bad("estimate --hours 1 --gpu 'Imaginary GPU 9000'", "not in the GPU TDP table");
  bad("estimate --hours 1 --cpu 'Imaginary CPU 9000'", "not in the CPU TDP table");
  bad("estimate --hours 1 --cpu 'Intel Xeon E5-2680 v4' --cpu-power-w 10", "not both");
}

TEST_CASE("estimate: bad input", "[carbon][cli]") {
  bad("estimate --device-power-w 300", "--hours is required");
  bad("estimate --hours abc --device-power-w 300", "--hours expects a number");
  bad("estimate --hours 0 --device-power-w 300", "--hours 0: accepted");
  bad("estimate --hours 1", "no power to estimate from");
  bad("estimate --hours 1 --device-power-w -5", "--device-power-w -5: accepted");
  bad("estimate --hours 1 --device-power-w 300 --country XX", "--country=XX: unknown country code");
  bad("estimate --hours 1 --device-power-w 300 --region gcp:nowhere1", "known gcp regions");
  bad("estimate --hours 1 --device-power-w 300 --intensity 5000", "from 0.001 to 2000");
  bad("estimate --hours 1 --device-power-w 300 --pue 0.8", "--pue 0.8: accepted");
  bad("estimate --hours 1 --device-power-w 300 --intensity 100 --country FR", "at most one of");
  bad("estimate --hours 1 --device-power-w 300 --gpu A100", "not both");
  bad("estimate --hours 1 --devices 2 --cpu-power-w 10", "--devices needs");
  bad("estimate --hours 1 --bogus 3", "unknown option '--bogus'");
  auto help = run_cli("estimate --help");
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.output, Contains("usage: trainmeter estimate") && Contains("--device-power-w"));
  for (const char* cmd : {"forecast", "recompute"}) {
    help = run_cli(std::string(cmd) + " --help");
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.output, Contains(std::string("usage: trainmeter ") + cmd));
  }
}

TEST_CASE("forecast: hand-computed prediction from a partial report", "[carbon][cli]") {
  TempDir dir;
  write_file(dir / "partial.json", partial_report().dump());
  const json j = cli_json("forecast '" + (dir / "partial.json") + "' --total-steps 105 --json");
  CHECK(j["steps_remaining"] == 100);
  CHECK(j["observed_steps"] == 4);
  // 10 s + 100 x 0.5 s = 60 s, +-1.96 x 0.1 x sqrt(100 x (1 + 100/4)) = 9.99389 s.
  CHECK(j["predicted"]["duration_s"]["value"].get<double>() == Approx(60.0));
  CHECK(j["predicted"]["duration_s"]["high"].get<double>() == Approx(69.9938946031088));
  CHECK(j["energy_method"] == "per_step_energy");
  // 1000 J + 100 x 50 J = 6000 J = 1/600 kWh; x 1.2 x 400 g = 0.8 g.
  CHECK(j["predicted"]["energy_kwh"]["value"].get<double>() == Approx(6000.0 / 3.6e6));
  CHECK(j["predicted"]["co2e_kg"]["value"].get<double>() == Approx(0.0008));
  // 3.6 USD/h x 60 s = 0.06 USD (no energy price).
  CHECK(j["predicted"]["cost"]["value"].get<double>() == Approx(0.06));
  CHECK(j["inputs"]["intensity_g_per_kwh"] == 400.0);

  auto text = run_cli("forecast '" + (dir / "partial.json") + "' --total-steps 105");
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Contains("100 remaining") && Contains("per_step_energy"));

  bad("forecast '" + (dir / "partial.json") + "'", "--total-steps N is required");
  bad("forecast '" + (dir / "partial.json") + "' --total-steps 3", "less than the 5 steps");
  bad("forecast '" + (dir / "partial.json") + "' --total-steps 10 --phase infer",
      "no phase 'infer'");
  bad("forecast '" + (dir / "absent.json") + "' --total-steps 10", "absent.json");
  bad("forecast", "expected 1 argument");
  write_file(dir / "broken.json", "{\"schema_version\": 1,");
  bad("forecast '" + (dir / "broken.json") + "' --total-steps 10", "broken.json");
}

TEST_CASE("recompute: other intensity and PUE from the recorded energy", "[carbon][cli]") {
  TempDir dir;
  write_file(dir / "partial.json", partial_report().dump());
  const std::string report = "'" + (dir / "partial.json") + "'";

  // 1000 J = 1/3600 kWh; x PUE 1.2 (kept) x 56.039 g (France) / 1000.
  json j = cli_json("recompute " + report + " --country FR --json");
  CHECK(j["carbon"]["intensity_source"] == "country");
  CHECK(j["carbon"]["co2e_kg"].get<double>() == Approx(1.2 * 56.039 / 3600.0 / 1000.0));
  CHECK(j["carbon"]["recomputed"]["original_co2e_kg"].get<double>() ==
        Approx(0.00013333333333333334));
  CHECK(j["carbon"]["recomputed"]["original_intensity_g_per_kwh"] == 400.0);
  CHECK(j["cost"]["compute"].get<double>() == Approx(0.01));

  // PUE only: the recorded intensity (400) is kept.
  j = cli_json("recompute " + report + " --pue 1.5 --json");
  CHECK(j["carbon"]["intensity_g_per_kwh"] == 400.0);
  CHECK(j["carbon"]["co2e_kg"].get<double>() == Approx(1.5 * 400.0 / 3600.0 / 1000.0));

  // A time series: the run (10:00:00 to 10:00:10) sits wholly at the 300 g sample.
  write_file(dir / "grid.csv", "2026-11-28T09:00:00Z,300\n2026-11-28T11:00:00Z,800\n");
  j = cli_json("recompute " + report + " --intensity-file '" + (dir / "grid.csv") + "' --json");
  CHECK(j["carbon"]["intensity_source"] == "time_series");
  CHECK(j["carbon"]["intensity_g_per_kwh"].get<double>() == Approx(300.0));

  auto text = run_cli("recompute " + report + " --intensity 100");
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Contains("->") && Contains("100 g/kWh"));

  bad("recompute " + report + " --country QQ", "--country=QQ: unknown country code");
  bad("recompute " + report + " --pue 0.5", "--pue 0.5: accepted");
  bad("recompute " + report + " --intensity 0", "from 0.001 to 2000");
  bad("recompute " + report + " --country FR --intensity 100", "at most one of");
  write_file(dir / "bad.csv", "2026-11-28T09:00:00Z,300\nnot a line\n");
  bad("recompute " + report + " --intensity-file '" + (dir / "bad.csv") + "'", "line 2");
  bad("recompute", "expected 1 argument");
}

TEST_CASE("end to end: a session's carbon and cost sections, then recompute -o", "[carbon][e2e]") {
  TempDir dir;
  trainmeter::Config c;
  c.output = dir / "run.json";
  c.run_name = "carbon-e2e";
  c.country = "DEU";
  c.pue = 1.25;
  c.price_per_hour = 7.2;
  c.energy_price_per_kwh = 0.3;
  c.currency = "EUR";
  c.powercap_root = dir / "no-powercap";
  c.perf_event_root = dir / "no-perf";
  c.nvml_library = dir / "no-nvml.so";
  c.energy_sources = {"estimate"};
  c.cpu_tdp_w = 100.0;
  c.stream = dir / "run.jsonl";
  {
    trainmeter::Session session(c);
    for (int i = 0; i < 5; ++i) {
      auto step = session.step(8);
    }
    session.finish();
  }
  const std::string path = dir / "run.json";
  INFO(trainmeter::test::read_file(path));
  CHECK(trainmeter::test::schema_errors(path).empty());
  const json r = trainmeter::test::read_json(path);
  const json& carbon = r["carbon"];
  CHECK(carbon["intensity_source"] == "country");
  CHECK(carbon["region"] == "DE");
  CHECK(carbon["intensity_g_per_kwh"] == 380.95);
  CHECK(carbon["pue"] == 1.25);
  const double duration_h = r["run"]["duration_s"].get<double>() / 3600.0;
  CHECK(r["cost"]["compute"].get<double>() == Approx(7.2 * duration_h));
  CHECK(r["cost"]["currency"] == "EUR");
  // The estimator (no RAPL, no perf, no NVML here, sources = estimate) always gives an energy:
  // carbon and the energy cost follow from it exactly.
  REQUIRE(r["energy"]["total_kwh"].is_number());
  const double kwh = r["energy"]["total_kwh"].get<double>();
  CHECK(kwh > 0);
  CHECK(r["energy"]["pue"] == 1.25);
  CHECK(r["energy"]["total_kwh_with_pue"].get<double>() == Approx(kwh * 1.25));
  CHECK(carbon["co2e_kg"].get<double>() == Approx(kwh * 1.25 * 380.95 / 1000.0));
  CHECK(r["cost"]["energy"].get<double>() == Approx(0.3 * kwh * 1.25));

  // The same run in Norway, written as a new valid report.
  auto out = run_cli("recompute '" + path + "' --country NO -o '" + (dir / "norway.json") + "'");
  INFO(out.output);
  REQUIRE(out.exit_code == 0);
  CHECK(trainmeter::test::schema_errors(dir / "norway.json").empty());
  const json n = trainmeter::test::read_json(dir / "norway.json");
  CHECK(n["carbon"]["intensity_g_per_kwh"] == 30.08);
  CHECK(n["carbon"]["recomputed"]["original_intensity_g_per_kwh"] == 380.95);
  CHECK(n["steps"] == r["steps"]);
  auto valid = run_cli("validate '" + (dir / "norway.json") + "'");
  CHECK(valid.exit_code == 0);

  // Forecast from the JSON Lines stream: step times from its step lines, assumptions from the
  // run's configuration in its header (the stream has no carbon section).
  double wall_sum = 0;
  int observed = 0;
  std::istringstream lines(trainmeter::test::read_file(dir / "run.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json l = json::parse(line);
    if (l["type"] == "step" && !l["warmup"].get<bool>()) {
      wall_sum += l["wall_ns"].get<double>();
      ++observed;
    }
  }
  REQUIRE(observed == 4);
  const json f = cli_json("forecast '" + (dir / "run.jsonl") + "' --total-steps 20 --json");
  CHECK(f["steps_done"] == 5);
  CHECK(f["steps_remaining"] == 15);
  CHECK(f["observed_steps"] == 4);
  CHECK(f["step_time_s"]["mean"].get<double>() == Approx(wall_sum / observed * 1e-9));
  CHECK(f["inputs"]["intensity_g_per_kwh"] == 380.95);
  CHECK(f["inputs"]["intensity_source"] == "country");
  CHECK(f["inputs"]["pue"] == 1.25);
  CHECK(f["inputs"]["price_per_hour"] == 7.2);
  CHECK(f["currency"] == "EUR");
  // The stream's sample lines carry the sampler's energy rows: the forecast extrapolates the
  // run's average power.
  CHECK(f["energy_method"] == "average_power");
}

TEST_CASE("end to end: a bad country fails the session at construction", "[carbon][e2e]") {
  TempDir dir;
  trainmeter::Config c;
  c.output = dir / "run.json";
  c.country = "Atlantis";
  CHECK_THROWS_WITH(trainmeter::Session(c), Contains("TRAINMETER_COUNTRY=Atlantis"));
}
