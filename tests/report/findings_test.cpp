// Findings (src/report/findings.cpp): per rule, a synthetic report that triggers it with
// hand-derived figures, and one that must not; ranking; the section against the schema; and the
// CLI's advise and summary.
#include <cmath>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "export/report_fixture.hpp"
#include "report/findings.hpp"
#include "report/schema.hpp"
#include "support/test_support.hpp"
#include "trainmeter/error.hpp"

namespace d = trainmeter::detail;
namespace t = trainmeter::test;
using nlohmann::json;

namespace {

/// The findings with `id` (in rank order).
std::vector<json> with_id(const json& section, const std::string& id) {
  std::vector<json> out;
  for (const json& f : section.at("items"))
    if (f.at("id") == id) out.push_back(f);
  return out;
}

bool not_checked(const json& section, const std::string& rule) {
  for (const json& n : section.at("not_checked"))
    if (n.at("rule") == rule) return true;
  return false;
}

/// The value of the evidence whose key is `key`.
json evidence_value(const json& finding, const std::string& key) {
  for (const json& e : finding.at("evidence"))
    if (e.at("key") == key) return e.at("value");
  return json();
}

json phase_with_gaps(double share) {
  return {{"train",
           {{"steps", 100},
            {"warmup_steps", 1},
            {"between_steps",
             {{"count", 99},
              {"total_ns", 2.5e9 * share},
              {"share_of_wall", share},
              {"p50_ns", 1e6},
              {"p90_ns", 3e6},
              {"max_ns", 9e6}}}}}};
}

/// steps[] of phase "train": `walls` in index order, the first `warmup` flagged warm-up.
json steps_report(const std::vector<double>& walls, int warmup) {
  json steps = json::array();
  double offset = 0;
  for (std::size_t i = 0; i < walls.size(); ++i) {
    steps.push_back({{"index", i},
                     {"phase", "train"},
                     {"start_offset_ns", offset},
                     {"wall_ns", walls[i]},
                     {"samples", 1},
                     {"tokens", 0},
                     {"warmup", static_cast<int>(i) < warmup}});
    offset += walls[i];
  }
  return {{"phases", {{"train", {{"steps", walls.size()}, {"warmup_steps", warmup}}}}},
          {"config", {{"warmup_steps", warmup}}},
          {"steps", steps}};
}

json fp32_adam_model() {
  return {{"parameters", 1000000},
          {"trainable_parameters", 1000000},
          {"frozen_parameters", 0},
          {"buffers", 0},
          {"bytes_by_dtype", {{"float32", 4000000}}},
          {"parameter_bytes", 4000000},
          {"buffer_bytes", 0},
          {"total_bytes", 4000000},
          {"zero_fraction", 0.0},
          {"optimizer_state_bytes_estimate", {{"sgd_momentum", 4000000}, {"adam", 8000000}}}};
}

}  // namespace

TEST_CASE("findings: input-bound from between_steps share", "[report][findings]") {
  const json high = d::findings({{"phases", phase_with_gaps(0.25)}});
  const auto f = with_id(high, "input_bound");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["severity"] == "high");
  CHECK(f[0]["scope"] == "phase:train");
  CHECK(evidence_value(f[0], "phases.train.between_steps.share_of_wall") == 0.25);
  CHECK(evidence_value(f[0], "phases.train.between_steps.p90_ns") == 3e6);
  CHECK(f[0]["expected_gain"]["fraction"] == 0.25);
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(6.25e8));
  CHECK(f[0]["try"][0].get<std::string>().find("workers(N)") != std::string::npos);

  const auto medium = with_id(d::findings({{"phases", phase_with_gaps(0.12)}}), "input_bound");
  REQUIRE(medium.size() == 1);
  CHECK(medium[0]["severity"] == "medium");

  // 1 %: no finding. Absent (an old report): no evidence, no finding, and it says so.
  CHECK(with_id(d::findings({{"phases", phase_with_gaps(0.01)}}), "input_bound").empty());
  const json old = d::findings({{"phases", {{"train", {{"steps", 3}}}}}});
  CHECK(with_id(old, "input_bound").empty());
  CHECK(not_checked(old, "input_bound"));
}

TEST_CASE("findings: under-used CPU threads", "[report][findings]") {
  // 1.5 + 0.5 s of CPU over 4 s = 0.5 CPUs busy of 8: share 0.0625; libtorch on 1 thread.
  json r = {{"run", {{"cpu_time_s", {{"user", 1.5}, {"system", 0.5}}}, {"duration_s", 4.0}}},
            {"host",
             {{"logical_cpus", 8}, {"torch_intra_op_threads", 1}, {"torch_inter_op_threads", 8}}}};
  const auto f = with_id(d::findings(r), "cpu_threads");
  REQUIRE(f.size() == 1);
  CHECK(evidence_value(f[0], "(run.cpu_time_s.user + run.cpu_time_s.system) / run.duration_s") ==
        0.5);
  CHECK(evidence_value(f[0], "cpu busy share (cpus busy / host.logical_cpus)") == 0.0625);
  CHECK(f[0]["expected_gain"]["fraction"] == 0.9375);
  CHECK(f[0]["try"][0].get<std::string>().find("at::set_num_threads(8)") != std::string::npos);

  // 25 + 3 s over 4 s = 7 CPUs of 8: no finding.
  r["run"]["cpu_time_s"] = {{"user", 25.0}, {"system", 3.0}};
  CHECK(with_id(d::findings(r), "cpu_threads").empty());

  // A GPU-timed run: idle CPUs are expected, the rule does not apply.
  r["run"]["cpu_time_s"] = {{"user", 1.5}, {"system", 0.5}};
  r["phases"] = {{"train", {{"gpu_busy_fraction", 0.9}}}};
  const json gpu = d::findings(r);
  CHECK(with_id(gpu, "cpu_threads").empty());
  CHECK(not_checked(gpu, "cpu_threads"));
}

TEST_CASE("findings: GPU idle from CUDA-event busy fraction and NVML", "[report][findings]") {
  const json idle = d::findings(
      {{"phases", {{"train", {{"gpu_busy_fraction", 0.2}, {"step_time_ns", {{"p50", 5e6}}}}}}}});
  const auto f = with_id(idle, "gpu_idle");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["severity"] == "high");
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(0.8));
  CHECK(evidence_value(f[0], "phases.train.step_time_ns.p50") == 5e6);

  CHECK(with_id(d::findings({{"phases", {{"train", {{"gpu_busy_fraction", 0.9}}}}}}), "gpu_idle")
            .empty());

  // No CUDA events: NVML's mean utilisation of the estimated GPU component, 30 % -> medium.
  const json nvml = {
      {"energy",
       {{"components", {{{"name", "gpu:0"}, {"inputs", {{"mean_utilisation_percent", 30.0}}}}}}}}};
  const auto n = with_id(d::findings(nvml), "gpu_idle");
  REQUIRE(n.size() == 1);
  CHECK(n[0]["severity"] == "medium");
  CHECK(evidence_value(n[0], "energy.components[0].inputs.mean_utilisation_percent") == 30.0);
  CHECK(n[0]["expected_gain"]["fraction"].get<double>() == Approx(0.7));
}

TEST_CASE("findings: every 10th step slow is periodic with period 10", "[report][findings]") {
  std::vector<double> walls(100, 1e6);
  for (std::size_t i = 9; i < walls.size(); i += 10) walls[i] = 3e6;
  const json s = d::findings(steps_report(walls, 1));
  const auto f = with_id(s, "periodic_slow_steps");
  REQUIRE(f.size() == 1);
  const std::string k = "steps[] (phase train)";
  CHECK(evidence_value(f[0], k + " period between slow steps") == 10);
  CHECK(evidence_value(f[0], k + " slow steps (> 2 x median)") == 10);
  CHECK(evidence_value(f[0], k + " first slow step (0 = the phase's first)") == 9);
  CHECK(evidence_value(f[0], k + " median wall_ns") == 1e6);
  CHECK(evidence_value(f[0], k + " time above the median in slow steps") == 2e7);
  // Steps 1..99 (step 0 is warm-up): 89 x 1 ms + 10 x 3 ms = 119 ms; 20 ms above the median.
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(20.0 / 119.0));
  CHECK(f[0]["severity"] == "medium");
  CHECK(with_id(s, "outlier_steps").empty());
  CHECK(with_id(s, "bimodal_steps").empty());
  CHECK(with_id(s, "warmup").empty());

  // Steady steps within +-5 %: no step finding at all.
  std::vector<double> steady;
  for (int i = 0; i < 100; ++i) steady.push_back(1e6 * (1 + 0.01 * ((i * 7) % 11 - 5)));
  const json quiet = d::findings(steps_report(steady, 1));
  for (const char* id : {"periodic_slow_steps", "outlier_steps", "bimodal_steps", "warmup"})
    CHECK(with_id(quiet, id).empty());

  // Two slow steps at irregular places (5 and 50), 11 ms each: outliers, not periodic.
  std::vector<double> outliers(100, 1e6);
  outliers[5] = outliers[50] = 11e6;
  const json o = d::findings(steps_report(outliers, 1));
  CHECK(with_id(o, "periodic_slow_steps").empty());
  const auto of = with_id(o, "outlier_steps");
  REQUIRE(of.size() == 1);
  // Steps 1..99: 97 x 1 ms + 2 x 11 ms = 119 ms; 20 ms above the median.
  CHECK(of[0]["expected_gain"]["fraction"].get<double>() == Approx(20.0 / 119.0));
}

TEST_CASE("findings: bimodal step times", "[report][findings]") {
  std::vector<double> walls;
  for (int i = 0; i < 100; ++i) walls.push_back(i % 2 == 0 ? 1e6 : 2e6);
  const auto f = with_id(d::findings(steps_report(walls, 1)), "bimodal_steps");
  REQUIRE(f.size() == 1);
  const std::string k = "steps[] (phase train)";
  CHECK(evidence_value(f[0], k + " fast group median wall_ns") == 1e6);
  CHECK(evidence_value(f[0], k + " slow group median wall_ns") == 2e6);
  // Steps 1..99: 49 fast, 50 slow; 50 x 1 ms above the fast median over 149 ms.
  CHECK(evidence_value(f[0], k + " fast group share").get<double>() == Approx(49.0 / 99.0));
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(50.0 / 149.0));
}

TEST_CASE("findings: warm-up detected against warmup_steps", "[report][findings]") {
  std::vector<double> walls(100, 1e6);
  for (int i = 0; i < 5; ++i) walls[i] = 5e6;
  const auto f = with_id(d::findings(steps_report(walls, 1)), "warmup");
  REQUIRE(f.size() == 1);
  const std::string k = "steps[] (phase train)";
  CHECK(evidence_value(f[0], k + " leading steps slower than 1.5 x median") == 5);
  CHECK(evidence_value(f[0], "phases.train.warmup_steps") == 1);
  CHECK(evidence_value(f[0], "config.warmup_steps") == 1);
  // After the configured warm-up: (4 x 5 + 95 x 1) ms / 99; after the detected one: 1 ms.
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(16e6 / 99));
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(16.0 / 115.0));
  CHECK(f[0]["try"][0].get<std::string>().find("warmup_steps=5") != std::string::npos);

  // Configured as 5: nothing to say.
  CHECK(with_id(d::findings(steps_report(walls, 5)), "warmup").empty());
}

TEST_CASE("findings: memory composition and lower precision of an fp32 Adam model",
          "[report][findings]") {
  json r = {{"model", fp32_adam_model()},
            {"memory", {{"peak_rss_bytes", 50000000}, {"peak_tensor_bytes", {{"cpu", 20000000}}}}}};
  const json s = d::findings(r);
  const auto m = with_id(s, "memory_composition");
  REQUIRE(m.size() == 1);
  CHECK(m[0]["severity"] == "info");
  CHECK(evidence_value(m[0], "model.optimizer_state_bytes_estimate.adam / 2 (gradients)") == 4e6);
  CHECK(evidence_value(m[0],
                       "memory.peak_rss_bytes - memory.peak_tensor_bytes.cpu (RSS outside "
                       "tensors, lower bound: the peaks may come from different moments)") == 3e7);
  const auto p = with_id(s, "lower_precision");
  REQUIRE(p.size() == 1);
  // 4 MB fp32 parameters -> 2 MB saved, their 4 MB gradients -> 2 MB, Adam's 8 MB -> 2 MB: 6 MB.
  CHECK(evidence_value(p[0], "saving: float32 parameters in bf16/fp16") == 2e6);
  CHECK(evidence_value(p[0], "saving: their gradients in bf16/fp16") == 2e6);
  CHECK(evidence_value(p[0], "saving: Adam state in 8 bits (2 of 8 bytes per parameter)") == 6e6);
  CHECK(p[0]["expected_gain"]["value"] == 1e7);
  CHECK(p[0]["expected_gain"]["fraction"] == 0.5);  // of the 20 MB tensor peak
  CHECK(p[0]["severity"] == "medium");

  // A bf16 model: nothing left to halve.
  json bf16 = fp32_adam_model();
  bf16["bytes_by_dtype"] = {{"bfloat16", 2000000}};
  bf16["parameter_bytes"] = 2000000;
  bf16["optimizer_state_bytes_estimate"] = {{"sgd_momentum", 2000000}, {"adam", 4000000}};
  const json sb = d::findings({{"model", bf16}});
  CHECK(with_id(sb, "lower_precision").empty());
  CHECK(with_id(sb, "memory_composition").size() == 1);
  CHECK(not_checked(d::findings(json::object()), "memory_composition"));
}

TEST_CASE("findings: GPU memory headroom", "[report][findings]") {
  const double gib = 1024.0 * 1024 * 1024;
  json r = {{"memory", {{"cuda", {{"cuda:0", {{"reserved_peak_bytes", 10 * gib}}}}}}},
            {"host", {{"gpus", {{{"index", 0}, {"memory_total_bytes", 80 * gib}}}}}}};
  const auto f = with_id(d::findings(r), "gpu_memory");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["severity"] == "low");
  CHECK(f[0]["expected_gain"]["fraction"] == 0.875);
  CHECK(f[0]["expected_gain"]["value"] == 70 * gib);
  r["memory"]["cuda"]["cuda:0"]["reserved_peak_bytes"] = 78 * gib;  // 97.5 %
  const auto full = with_id(d::findings(r), "gpu_memory");
  REQUIRE(full.size() == 1);
  CHECK(full[0]["severity"] == "medium");
  r["memory"]["cuda"]["cuda:0"]["reserved_peak_bytes"] = 60 * gib;  // 75 %: nothing to say
  CHECK(with_id(d::findings(r), "gpu_memory").empty());
}

TEST_CASE("findings: carbon what-if over regions", "[report][findings]") {
  // 10 kWh at the world default 475 g/kWh = 4.75 kg; the bundled table's cleanest region is
  // aws:ca-central-1 at 1.5 g/kWh (tied with azure:canadaeast; the name breaks the tie).
  json r = {{"carbon", {{"energy_kwh_with_pue", 10.0}, {"intensity_g_per_kwh", 475.0}}}};
  const auto f = with_id(d::findings(r), "carbon_region");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["ranking"][0]["region"] == "aws:ca-central-1");
  CHECK(f[0]["ranking"][1]["region"] == "azure:canadaeast");
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(4.735));
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(1 - 1.5 / 475));
  CHECK(f[0]["severity"] == "medium");

  // The user's list: FR 56.039, ZA (gcp:africa-south1) 646, PL 661.926 g/kWh; 1 kWh in Poland.
  d::FindingsOptions o;
  o.regions = {"PL", "gcp:africa-south1", "FR", "XX"};
  r["carbon"] = {{"energy_kwh_with_pue", 1.0}, {"intensity_g_per_kwh", 661.926}};
  const json s = d::findings(r, o);
  const auto u = with_id(s, "carbon_region");
  REQUIRE(u.size() == 1);
  REQUIRE(u[0]["ranking"].size() == 3);
  CHECK(u[0]["ranking"][0]["region"] == "FR");
  CHECK(u[0]["ranking"][1]["region"] == "gcp:africa-south1");
  CHECK(u[0]["ranking"][2]["region"] == "PL");
  CHECK(u[0]["expected_gain"]["value"].get<double>() == Approx(0.605887));
  CHECK(not_checked(s, "carbon_what_if"));  // "XX" is unknown

  // Already at 50 g/kWh: FR is dirtier, no finding.
  r["carbon"]["intensity_g_per_kwh"] = 50.0;
  CHECK(with_id(d::findings(r, o), "carbon_region").empty());
}

TEST_CASE("findings: the cleanest hours of an intensity series", "[report][findings]") {
  d::FindingsOptions o;
  o.regions = {"PL"};  // dirtier than the run: only the series finding
  o.series = d::parse_intensity_series(
      "timestamp_utc,g_per_kwh\n2026-01-01T00:00Z,500\n2026-01-01T01:00Z,100\n"
      "2026-01-01T02:00Z,100\n2026-01-01T03:00Z,400\n",
      "series.csv");
  // A 2 h run at 400 g/kWh, 1 kWh: windows from 00:00 (300), 01:00 (100), 02:00 (250); from
  // 03:00 the series (held one spacing past its last sample) ends too early.
  const json r = {{"run", {{"duration_s", 7200.0}}},
                  {"carbon", {{"energy_kwh_with_pue", 1.0}, {"intensity_g_per_kwh", 400.0}}}};
  const auto f = with_id(d::findings(r, o), "carbon_hours");
  REQUIRE(f.size() == 1);
  REQUIRE(f[0]["ranking"].size() == 3);
  CHECK(f[0]["ranking"][0]["start_utc"] == "2026-01-01T01:00:00.000Z");
  CHECK(f[0]["ranking"][0]["mean_g_per_kwh"] == 100.0);
  CHECK(f[0]["ranking"][1]["mean_g_per_kwh"] == 250.0);
  CHECK(f[0]["ranking"][2]["mean_g_per_kwh"] == 300.0);
  CHECK(f[0]["expected_gain"]["fraction"] == 0.75);
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(0.3));

  // A 5 h run does not fit in the 4 h the series covers.
  const json longer = {{"run", {{"duration_s", 18000.0}}},
                       {"carbon", {{"energy_kwh_with_pue", 1.0}, {"intensity_g_per_kwh", 400.0}}}};
  const json s = d::findings(longer, o);
  CHECK(with_id(s, "carbon_hours").empty());
  CHECK(not_checked(s, "carbon_hours"));
}

// The cost what-if: the same energy at the cheapest candidate price of the run's currency.
TEST_CASE("findings: cost what-if over electricity prices", "[report][findings]") {
  auto price = [](const char* code, double p, const char* cur) {
    return d::ElectricityPrice{code, std::string("place ") + code, p, cur, 2023, "test table"};
  };
  d::FindingsOptions o;
  o.prices = {price("B", 0.10, "USD"), price("A", 0.05, "USD"), price("C", 0.01, "EUR"),
              price("D", 0.30, "USD")};
  // 10 kWh (with PUE) at 0.20 USD/kWh = 2 USD of energy. Cheapest USD candidate A at 0.05:
  // 0.5 USD, a saving of 1.5 USD = 75 % of the energy cost. C (EUR) is never compared.
  json r = {{"cost", t::energy_cost_section("USD", 0.20, 10.0)}};
  const json s = d::findings(r, o);
  const auto f = with_id(s, "cost_region");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["severity"] == "medium");
  REQUIRE(f[0]["ranking"].size() == 3);
  CHECK(f[0]["ranking"][0]["code"] == "A");
  CHECK(f[0]["ranking"][0]["energy_cost"].get<double>() == Approx(0.5));
  CHECK(f[0]["ranking"][0]["saving"].get<double>() == Approx(1.5));
  CHECK(f[0]["ranking"][1]["code"] == "B");
  CHECK(f[0]["ranking"][2]["code"] == "D");
  CHECK(f[0]["ranking"][2]["saving"].get<double>() == Approx(-1.0));
  CHECK(f[0]["expected_gain"]["fraction"].get<double>() == Approx(0.75));
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(1.5));
  CHECK(f[0]["expected_gain"]["unit"] == "USD");
  CHECK(evidence_value(f[0], "cost.inputs.energy_price_per_kwh") == 0.20);
  CHECK(evidence_value(f[0], "cost.inputs.energy_kwh x cost.inputs.energy_price_per_kwh")
            .get<double>() == Approx(2.0));
  CHECK(not_checked(s, "cost_what_if"));  // C is in EUR: said, not converted
  CHECK(d::format_evidence_value(0.2, "USD/kWh") == "0.2 USD/kWh");

  // At 0.06 USD/kWh the cheapest saves 1 - 0.05/0.06 = 16.7 % < 20 %: no finding.
  r["cost"]["inputs"]["energy_price_per_kwh"] = 0.06;
  CHECK(with_id(d::findings(r, o), "cost_region").empty());
  // Between 20 and 50 %: low. 0.08 -> 1 - 0.05/0.08 = 37.5 %.
  r["cost"]["inputs"]["energy_price_per_kwh"] = 0.08;
  const auto low = with_id(d::findings(r, o), "cost_region");
  REQUIRE(low.size() == 1);
  CHECK(low[0]["severity"] == "low");

  // A EUR run against USD-only candidates: nothing compared, and the reason says so.
  r["cost"]["currency"] = "EUR";
  r["cost"]["inputs"]["energy_price_per_kwh"] = 0.20;
  o.prices = {price("A", 0.05, "USD")};
  const json eur = d::findings(r, o);
  CHECK(with_id(eur, "cost_region").empty());
  REQUIRE(not_checked(eur, "cost_what_if"));
  CHECK(eur["not_checked"].back()["reason"].get<std::string>().find("USD") != std::string::npos);

  // The bundled table, a USD run at 0.20 USD/kWh, 10 kWh: the cheapest rows are North Dakota
  // 0.0738 and Utah 0.0851 USD/kWh (EIA 2023, commercial): a saving of 10 x (0.20 - 0.0738)
  // = 1.262 USD, 63.1 %.
  r["cost"]["currency"] = "USD";
  const auto bundled = with_id(d::findings(r), "cost_region");
  REQUIRE(bundled.size() == 1);
  CHECK(bundled[0]["ranking"][0]["code"] == "US-ND");
  CHECK(bundled[0]["ranking"][1]["code"] == "US-UT");
  CHECK(bundled[0]["expected_gain"]["value"].get<double>() == Approx(1.262));
  CHECK(bundled[0]["expected_gain"]["fraction"].get<double>() == Approx(1 - 0.0738 / 0.20));

  // No energy price in the report: not checked.
  CHECK(not_checked(d::findings(json{{"cost", nullptr}}), "cost_what_if"));
}

TEST_CASE("electricity prices: the bundled table and a user's file", "[report][findings]") {
  const auto& table = d::price_table();
  CHECK(table.size() == 22);
  for (const auto& p : table) {
    INFO(p.code);
    CHECK(!p.source.empty());
    CHECK(p.year == 2023);
  }
  t::TempDir dir;
  const std::string bad = dir / "bad.tsv";
  {
    std::ofstream out(bad);
    out << "code\tname\tprice_per_kwh\tcurrency\tyear\tsource\nXX\tX\t-1\tUSD\t2023\ts\n"
           "YY\tY\t0.1\tdollars\t2023\ts\n";
  }
  try {
    d::load_price_table(bad, "--prices-file");
    FAIL("no error");
  } catch (const trainmeter::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("--prices-file=" + bad) &&
                             Catch::Contains("line 2: price_per_kwh \"-1\"") &&
                             Catch::Contains("line 3: currency \"dollars\""));
  }

  // The CLI: a bad file fails at parse with the line; a good one gives the finding.
  json r = t::make_report();
  r["cost"] = t::energy_cost_section("EUR", 0.20, 10.0);
  t::write_report(dir / "r.json", r);
  const auto failed = t::run_cli("advise " + dir / "r.json --prices-file " + bad);
  CHECK(failed.exit_code == 2);
  CHECK(failed.output.find("line 2: price_per_kwh") != std::string::npos);
  const std::string good = dir / "good.tsv";
  {
    std::ofstream out(good);
    out << "# mine\nFI\tFinland\t0.089\tEUR\t2023\tEurostat\n";
  }
  const auto ok = t::run_cli("advise " + dir / "r.json --prices-file " + good + " --json");
  REQUIRE(ok.exit_code == 0);
  const auto f = with_id(json::parse(ok.output), "cost_region");
  REQUIRE(f.size() == 1);
  // 10 kWh x (0.20 - 0.089) EUR = 1.11 EUR, 55.5 %.
  CHECK(f[0]["expected_gain"]["value"].get<double>() == Approx(1.11));
  CHECK(f[0]["severity"] == "medium");
  // Shown as the other findings are: advise's text and summary (the bundled table's EUR rows:
  // Finland 0.089 EUR/kWh, the same 1.11 EUR).
  const auto text = t::run_cli("advise " + dir / "r.json --prices-file " + good);
  CHECK(text.output.find("[medium] cost_region") != std::string::npos);
  const auto summary = t::run_cli("summary " + dir / "r.json");
  CHECK(summary.output.find("cost_region") != std::string::npos);
  CHECK(summary.output.find("Finland") != std::string::npos);
}

TEST_CASE("findings: ranked by severity, then gain; schema-valid in a report",
          "[report][findings]") {
  json r = t::make_report();
  r["phases"].begin()->emplace("between_steps", phase_with_gaps(0.12)["train"]["between_steps"]);
  r["model"] = fp32_adam_model();
  r["run"]["cpu_time_s"] = {{"user", 0.1}, {"system", 0.0}};
  d::add_findings(r);
  const json& items = r["findings"]["items"];
  REQUIRE(items.size() >= 3);
  auto rank = [](const json& f) {
    const std::string s = f["severity"];
    return s == "high" ? 0 : s == "medium" ? 1 : s == "low" ? 2 : 3;
  };
  for (std::size_t i = 1; i < items.size(); ++i) CHECK(rank(items[i - 1]) <= rank(items[i]));
  CHECK(items.back()["severity"] == "info");
  CHECK(d::validate_schema(r, d::report_schema()).empty());
  t::TempDir dir;
  t::write_report(dir / "r.json", r);
  CHECK(t::schema_errors(dir / "r.json") == "");

  const std::string text = d::render_findings(r["findings"]);
  CHECK(text.find("[medium] input_bound") != std::string::npos);
  CHECK(text.find("evidence  phases.") != std::string::npos);
  CHECK(d::render_findings({{"items", json::array()}}) == "findings: none\n");
}

TEST_CASE("findings: trainmeter advise and summary", "[report][findings][cli]") {
  t::TempDir dir;
  json r = t::make_report();
  r["phases"].begin()->emplace("between_steps", phase_with_gaps(0.3)["train"]["between_steps"]);
  t::write_report(dir / "r.json", r);  // no findings section: computed on the fly

  const auto advise = t::run_cli("advise " + dir / "r.json");
  REQUIRE(advise.exit_code == 0);
  CHECK(advise.output.find("[high] input_bound") != std::string::npos);
  const auto as_json = t::run_cli("advise " + dir / "r.json" + " --json");
  REQUIRE(as_json.exit_code == 0);
  const json parsed = json::parse(as_json.output);
  CHECK(parsed["items"][0]["id"] == "input_bound");

  const auto summary = t::run_cli("summary " + dir / "r.json");
  REQUIRE(summary.exit_code == 0);
  CHECK(summary.output.rfind("findings (", 0) == 0);  // findings come first
  const auto sj = t::run_cli("summary " + dir / "r.json --json");
  REQUIRE(sj.exit_code == 0);
  CHECK(json::parse(sj.output)["findings"]["items"][0]["id"] == "input_bound");

  const auto bad = t::run_cli("advise " + dir / "r.json --intensity-file " + dir / "missing.csv");
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("--carbon-intensity-file") != std::string::npos);
}

TEST_CASE("findings: odd shapes are no evidence, never an exception", "[report][findings]") {
  const json odd[] = {
      json::array({1, 2}),
      {{"phases", json::array({1})}, {"steps", {1, "x", {{"phase", 3}}}}},
      {{"phases", {{"train", {{"between_steps", "x"}, {"gpu_busy_fraction", "y"}}}}}},
      {{"model", "x"}, {"memory", {{"cuda", {{"cuda", 1}}}}}, {"host", {{"gpus", {1}}}}},
      {{"carbon", {{"energy_kwh_with_pue", "a"}}}, {"run", {{"cpu_time_s", 1}}}},
      {{"findings", {{"items", {1, "x"}}}}}};
  for (const json& r : odd) {
    INFO(r.dump());
    const json s = d::stored_or_computed_findings(r);
    CHECK(s.is_object());
    CHECK_NOTHROW(d::render_findings(s));
  }
  // A run as long as the int64 clock allows does not overflow the series window.
  d::FindingsOptions o;
  o.series = d::parse_intensity_series("2026-01-01T00:00Z,100\n2026-01-01T01:00Z,50\n", "s.csv");
  const json huge = {{"run", {{"duration_s", 9e18}}},
                     {"carbon", {{"energy_kwh_with_pue", 1.0}, {"intensity_g_per_kwh", 400.0}}}};
  CHECK(not_checked(d::findings(huge, o), "carbon_hours"));
}

TEST_CASE("epoch view: epochs from phase changes and from a step metric", "[report][findings]") {
  // train 1, 2, 3 ms; eval 5 ms; train 2, 2 ms; eval 5 ms: two train epochs.
  json steps = json::array();
  const std::vector<std::pair<const char*, double>> seq = {
      {"train", 1e6}, {"train", 2e6}, {"train", 3e6}, {"eval", 5e6},
      {"train", 2e6}, {"train", 2e6}, {"eval", 5e6}};
  double t = 0;
  for (std::size_t i = 0; i < seq.size(); ++i) {
    steps.push_back({{"index", i},
                     {"phase", seq[i].first},
                     {"start_offset_ns", t},
                     {"wall_ns", seq[i].second},
                     {"samples", 10},
                     {"tokens", 0},
                     {"warmup", false},
                     {"loss", 1.0 / double(i + 1)},
                     {"energy_j", 0.5}});
    t += seq[i].second;
  }
  const json e = d::epoch_view({{"steps", steps}});
  REQUIRE(e.size() == 2);
  CHECK(e[0]["phase"] == "train");
  CHECK(e[0]["steps"] == 3);
  CHECK(e[0]["span_s"].get<double>() == Approx(6e-3));
  CHECK(e[0]["samples_per_s"].get<double>() == Approx(30 / 6e-3));
  CHECK(e[0]["loss_last"].get<double>() == Approx(1.0 / 3));
  CHECK(e[0]["loss_mean"].get<double>() == Approx((1.0 + 0.5 + 1.0 / 3) / 3));
  CHECK(e[0]["energy_j"] == 1.5);
  CHECK(e[1]["first_index"] == 4);
  CHECK(e[1]["steps"] == 2);
  CHECK(e[1]["samples_per_s"].get<double>() == Approx(20 / 4e-3));
  CHECK(e[1]["energy_j"] == 1.0);

  // Marked by the program: metric "epoch" 0, 0, 1, 1, 1 on one phase.
  json marked = json::array();
  for (int i = 0; i < 5; ++i)
    marked.push_back({{"index", i},
                      {"phase", "train"},
                      {"start_offset_ns", i * 1e6},
                      {"wall_ns", 1e6},
                      {"samples", 1},
                      {"tokens", 0},
                      {"warmup", false},
                      {"metrics", {{"epoch", i < 2 ? 0 : 1}}}});
  const json m = d::epoch_view({{"steps", marked}});
  REQUIRE(m.size() == 2);
  CHECK(m[0]["steps"] == 2);
  CHECK(m[1]["epoch"] == 1);
  CHECK(m[1]["steps"] == 3);
  CHECK(m[1]["energy_j"].is_null());  // steps without energy_j

  // One phase, no marks: one epoch, no view.
  marked[0].erase("metrics");
  for (auto& s : marked) s.erase("metrics");
  CHECK(d::epoch_view({{"steps", marked}}).empty());
}
