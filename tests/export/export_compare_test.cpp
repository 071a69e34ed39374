// compare: ratios B/A with nulls where a side lacks a figure, the bootstrap verdict, the CI gate;
// export CLI end to end and bad report input.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <catch2/catch.hpp>

#include "export/compare.hpp"
#include "export/exports.hpp"
#include "export/report_fixture.hpp"
#include "support/test_support.hpp"
#include "trainmeter/session.hpp"

using nlohmann::json;
using trainmeter::test::make_report;
using trainmeter::test::run_cli;
using trainmeter::test::TempDir;
namespace d = trainmeter::detail;

namespace {

// n steps of `base_ns` with a deterministic +-5% spread (the first one is warm-up).
std::vector<double> walls(double base_ns, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(std::round(base_ns * (1.0 + 0.05 * std::sin(i * 1.7))));
  return v;
}

double median_sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

TEST_CASE("compare: ratios, nulls and a significant speed-up", "[export][compare]") {
  trainmeter::test::FixtureOptions oa, ob;
  oa.walls_ns = walls(10e6, 201);
  ob.walls_ns = walls(5e6, 201);
  ob.cpu_j = 1.8e6;
  ob.co2e_kg.reset();
  const json a = make_report(oa), b = make_report(ob);
  const json c = d::compare_reports(a, b);
  CHECK(c["phase"] == "train");
  CHECK(c["metrics"]["energy_j"]["ratio"].get<double>() == Approx(4.32e6 / 6.12e6).epsilon(1e-12));
  CHECK(c["metrics"]["co2e_kg"]["ratio"].is_null());  // B lacks carbon: null, not 0
  CHECK(c["metrics"]["co2e_kg"]["a"].get<double>() == 0.57);
  CHECK(c["metrics"]["model_bytes"]["ratio"].get<double>() == 1.0);
  CHECK(c["metrics"]["cost"]["ratio"].is_null());
  const std::vector<double> ka(oa.walls_ns.begin() + 1, oa.walls_ns.end()),
      kb(ob.walls_ns.begin() + 1, ob.walls_ns.end());
  const double expected = median_sorted(kb) / median_sorted(ka);
  const json& st = c["step_time"];
  CHECK(st["steps_a"] == 200);
  CHECK(st["median_ratio"].get<double>() == Approx(expected).epsilon(1e-12));
  CHECK(st["ci_low"].get<double>() <= expected);
  CHECK(st["ci_high"].get<double>() >= expected);
  CHECK(st["ci_high"].get<double>() < 1.0);
  CHECK(st["significant"] == true);
  CHECK(st["verdict"].get<std::string>().find("x faster (") != std::string::npos);
  // Same seed, same interval.
  CHECK(d::compare_reports(a, b)["step_time"] == st);
}

// A bootstrap whose distribution is worked out by hand. A: every step 10 ms, so every resample's
// median is 10 ms. B: steps of 4, 5 and 6 ms; a resample of three draws has median 4 ms when at
// least two draws are 4 ms: 3 x (1/3)^2 x (2/3) + (1/3)^3 = 7/27 = 0.259; 6 ms likewise 7/27;
// 5 ms the remaining 13/27 = 0.481. So the ratio B/A is 0.4, 0.5 or 0.6 with those odds:
// - a 95% interval (2.5% and 97.5% quantiles) is [0.4, 0.6]: each end has 25.9% mass;
// - an 80% interval (10%, 90%) is also [0.4, 0.6];
// - a 20% interval (40%, 60% quantiles) is [0.5, 0.5]: 0.4 holds only 25.9%, 0.5 reaches 74.1%.
// With 10,000 resamples the sampled odds are within 0.005 (one standard deviation) of those, far
// from every boundary. These are single steps resampled (block_steps 1); the automatic blocks of
// ceil(sqrt(3)) = 2 steps, circular, give medians 4, 5 and 6 ms with odds 2/9, 5/9 and 2/9 (the
// nine pairs of block start and next start), which leave all three intervals as they are: that
// is what compare_reports, below, uses.
TEST_CASE("compare: the bootstrap interval matches a hand-derived distribution",
          "[export][compare]") {
  const std::vector<double> a(5, 10e6), b = {4e6, 5e6, 6e6};
  d::CompareOptions o;
  o.block_steps = 1;
  auto ci = d::bootstrap_median_ratio(a, b, o);
  REQUIRE(ci);
  CHECK(ci->first == Approx(0.4).epsilon(1e-12));
  CHECK(ci->second == Approx(0.6).epsilon(1e-12));
  o.confidence = 0.8;
  ci = d::bootstrap_median_ratio(a, b, o);
  REQUIRE(ci);
  CHECK(ci->first == Approx(0.4).epsilon(1e-12));
  CHECK(ci->second == Approx(0.6).epsilon(1e-12));
  o.confidence = 0.2;
  ci = d::bootstrap_median_ratio(a, b, o);
  REQUIRE(ci);
  CHECK(ci->first == Approx(0.5).epsilon(1e-12));
  CHECK(ci->second == Approx(0.5).epsilon(1e-12));
  // Constant sides: every resample gives the same ratio, so the interval is that point.
  ci = d::bootstrap_median_ratio(a, std::vector<double>(7, 5e6), d::CompareOptions{});
  REQUIRE(ci);
  CHECK(ci->first == 0.5);
  CHECK(ci->second == 0.5);
  // A median of 0 has no ratio; empty sides have no interval.
  CHECK_FALSE(d::bootstrap_median_ratio(std::vector<double>(3, 0.0), b, d::CompareOptions{}));
  CHECK_FALSE(d::bootstrap_median_ratio({}, b, d::CompareOptions{}));

  // Through compare_reports, from reports whose first (warm-up) step is left out.
  trainmeter::test::FixtureOptions oa, ob;
  oa.walls_ns = {99e6, 10e6, 10e6, 10e6, 10e6, 10e6};
  ob.walls_ns = {99e6, 4e6, 5e6, 6e6};
  const json st = d::compare_reports(make_report(oa), make_report(ob))["step_time"];
  CHECK(st["steps_a"] == 5);
  CHECK(st["steps_b"] == 3);
  CHECK(st["median_ratio"].get<double>() == Approx(0.5).epsilon(1e-12));
  CHECK(st["ci_low"].get<double>() == Approx(0.4).epsilon(1e-12));
  CHECK(st["ci_high"].get<double>() == Approx(0.6).epsilon(1e-12));
  CHECK(st["confidence"] == 0.95);
  CHECK(st["resamples"] == 10000);
  CHECK(st["block_steps_b"] == json::array({2}));
  CHECK(st["significant"] == true);  // the whole interval lies below 1
}

TEST_CASE("compare: the same distribution is no significant difference", "[export][compare]") {
  trainmeter::test::FixtureOptions oa, ob;
  oa.walls_ns = walls(10e6, 201);
  ob.walls_ns = oa.walls_ns;
  std::reverse(ob.walls_ns.begin() + 1, ob.walls_ns.end());
  const json c = d::compare_reports(make_report(oa), make_report(ob));
  CHECK(c["step_time"]["significant"] == false);
  CHECK(c["step_time"]["ci_low"].get<double>() <= 1.0);
  CHECK(c["step_time"]["ci_high"].get<double>() >= 1.0);
  CHECK(c["step_time"]["verdict"].get<std::string>().rfind("no significant difference", 0) == 0);
}

TEST_CASE("compare CLI: --json, --fail-if-slower gate, bad input", "[export][compare][cli]") {
  TempDir dir;
  trainmeter::test::FixtureOptions fast, slow;
  fast.walls_ns = walls(5e6, 101);
  slow.walls_ns = walls(10e6, 101);
  trainmeter::test::write_report(dir / "fast.json", make_report(fast));
  trainmeter::test::write_report(dir / "slow.json", make_report(slow));
  const std::string f = "'" + (dir / "fast.json") + "'", s = "'" + (dir / "slow.json") + "'";

  auto r = run_cli("compare " + f + " " + s + " --fail-if-slower 10");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("x slower (") != std::string::npos);
  CHECK(r.output.find("FAILED") != std::string::npos);
  r = run_cli("compare " + s + " " + f + " --fail-if-slower 10");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("x faster (") != std::string::npos);
  // Slower by ~2x, but the gate allows 150%.
  CHECK(run_cli("compare " + f + " " + s + " --fail-if-slower 150").exit_code == 0);
  r = run_cli("compare " + f + " " + s + " --json");
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.output);
  CHECK(j["step_time"]["median_ratio"].get<double>() > 1.9);

  trainmeter::test::write_file(dir / "bad.json", "{\"schema_version\": 1,\n \"run\": [1, 2,\n");
  r = run_cli("compare " + f + " '" + (dir / "bad.json") + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.output.rfind("trainmeter compare: " + (dir / "bad.json") + ": line 3, column 1:", 0) ==
        0);
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  json wrong = make_report();
  wrong["phases"] = "fast";
  trainmeter::test::write_report(dir / "wrong.json", wrong);
  r = run_cli("compare " + f + " '" + (dir / "wrong.json") + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("not a valid report: /phases") != std::string::npos);
  CHECK(run_cli("compare " + f + " " + s + " --fail-if-slower ten").exit_code == 2);
}

TEST_CASE("export CLI writes every format beside the report", "[export][cli]") {
  TempDir dir;
  const std::string report = dir / "r.json";
  trainmeter::test::write_report(report, make_report());
  for (const char* fmt : {"csv", "prom", "trace", "html"}) {
    const auto r = run_cli(std::string("export '") + report + "' --format " + fmt);
    INFO(r.output);
    CHECK(r.exit_code == 0);
  }
  CHECK(trainmeter::test::read_file(dir / "r.csv").rfind("timestamp,project_name,", 0) == 0);
  CHECK(trainmeter::test::read_file(dir / "r.prom")
            .find("# TYPE trainmeter_step_time_seconds summary") != std::string::npos);
  CHECK(trainmeter::test::read_json(dir / "r.trace.json").contains("traceEvents"));
  CHECK(trainmeter::test::read_file(dir / "r.html").rfind("<!DOCTYPE html>", 0) == 0);
  const auto bad = run_cli("export '" + report + "' --format svg");
  CHECK(bad.exit_code == 2);
  CHECK(bad.output ==
        "trainmeter export: --format: 'svg' is not a format; accepted: csv, prom, trace, html\n");
}

TEST_CASE("Exports at finish via config.exports", "[export][session]") {
  TempDir dir;
  trainmeter::Config c;
  c.run_name = "exp";
  c.output = dir / "exp.json";
  c.energy_sources = {"estimate"};
  c.progress = "off";
  c.exports = {"csv", "prom", "trace", "html"};
  {
    trainmeter::Session s(c);
    for (int i = 0; i < 5; ++i) auto st = s.step(1);
    REQUIRE(s.finish().written);
  }
  for (const char* suffix : {".csv", ".prom", ".trace.json", ".html"})
    CHECK(std::ifstream(dir / (std::string("exp") + suffix)).good());
  CHECK(trainmeter::test::schema_errors(dir / "exp.json") == "");
  // The steps reach the exports one at a time, made again from the records: the pages are those
  // of the whole written report.
  const json report = json::parse(trainmeter::test::read_file(dir / "exp.json"));
  REQUIRE(report["steps"].size() == 5);
  CHECK(trainmeter::test::read_file(dir / "exp.html") ==
        trainmeter::detail::export_text(report, "html"));
  CHECK(trainmeter::test::read_file(dir / "exp.trace.json") ==
        trainmeter::detail::export_text(report, "trace"));
}
