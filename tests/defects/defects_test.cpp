// Regression tests for issue 15's defects, one TEST_CASE (or a few) per item; the item number
// is in each name. The terminate handler (item 23) is in terminate_test.cpp.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <trainmeter/trainmeter.hpp>

#include "export/csv.hpp"
#include "export/exports.hpp"
#include "export/report_fixture.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::read_file;
using trainmeter::test::read_json;
using trainmeter::test::run_cli;
using trainmeter::test::ScopedEnv;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;
namespace d = trainmeter::detail;

namespace {

// A real report from a Session: `steps` train steps of batch 4, losses 10, 9, 8, ...
std::string real_report(const TempDir& dir, const std::string& name, trainmeter::Config c = {}) {
  c.run_name = name;
  if (c.output.empty()) c.output = dir / (name + ".json");
  c.warmup_steps = 1;
  c.progress = "off";
  trainmeter::Session s(c);
  for (int i = 0; i < 5; ++i) {
    auto st = s.step(4);
    st.set_loss(10.0 - i);
  }
  const trainmeter::Report r = s.finish();
  REQUIRE(r.written);
  return r.path;
}

// The cell of `column` in the data row of a one-row CSV export.
std::string csv_cell(const json& report, const std::string& column) {
  const d::CsvTable t = d::parse_csv(d::csv_header_line() + d::csv_row_line(report), "row");
  REQUIRE(t.error.empty());
  const auto& cols = d::csv_columns();
  for (std::size_t i = 0; i < cols.size(); ++i)
    if (cols[i] == column) return t.rows[1][i];
  FAIL("no column " << column);
  return "";
}

}  // namespace

TEST_CASE("1: an output that is an input (same file, symlink, hard link) is refused",
          "[defects][cli]") {
  TempDir dir;
  const std::string report = real_report(dir, "copy");
  const std::string before = read_file(report);
  REQUIRE(::symlink(report.c_str(), (dir / "link.json").c_str()) == 0);
  REQUIRE(::link(report.c_str(), (dir / "hard.json").c_str()) == 0);
  for (const std::string& out : {report, dir / "link.json", dir / "hard.json"}) {
    for (const char* format : {"trace", "csv", "html"}) {
      const auto r = run_cli("export " + report + " -f " + std::string(format) + " -o " + out);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.output, Catch::Contains("same file"));
    }
    const auto rc = run_cli("recompute " + report + " --pue 1.2 -o " + out);
    CHECK(rc.exit_code == 2);
    CHECK_THAT(rc.output, Catch::Contains("same file"));
  }
  // Another spelling of the same path.
  const auto dotted = run_cli("export " + report + " -f prom -o " + dir / "./copy.json");
  CHECK(dotted.exit_code == 2);
  CHECK(read_file(report) == before);
  // A new path still works.
  CHECK(run_cli("export " + report + " -f trace -o " + dir / "new.trace.json").exit_code == 0);

  // recover -o STREAM and merge -o RANK0.
  trainmeter::Config c;
  c.stream = dir / "s.jsonl";
  real_report(dir, "streamed", c);
  const std::string stream_before = read_file(dir / "s.jsonl");
  const auto rec = run_cli("recover " + dir / "s.jsonl" + " -o " + dir / "s.jsonl");
  CHECK(rec.exit_code == 2);
  CHECK_THAT(rec.output, Catch::Contains("same file"));
  CHECK(read_file(dir / "s.jsonl") == stream_before);
  const auto m = run_cli("merge " + report + " -o " + report);
  CHECK(m.exit_code == 2);
  CHECK_THAT(m.output, Catch::Contains("same file"));
  CHECK(read_file(report) == before);
}

namespace {
// Rank files of one two-rank run: r0.json and r1.json.
void two_ranks(const TempDir& dir) {
  for (int rank = 0; rank < 2; ++rank) {
    trainmeter::Config c;
    c.rank = rank;
    c.world_size = 2;
    c.run_id = "run-2";
    c.output = dir / "r{rank}.json";
    real_report(dir, "r", c);
  }
}
}  // namespace

TEST_CASE("2: merge refuses an already merged report and duplicate ranks", "[defects][merge]") {
  TempDir dir;
  two_ranks(dir);
  const auto ok =
      run_cli("merge " + dir / "r0.json" + " " + dir / "r1.json" + " -o " + dir / "m.json");
  REQUIRE(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("merged 2 of 2"));
  const auto again =
      run_cli("merge " + dir / "m.json" + " " + dir / "r1.json" + " -o " + dir / "m2.json");
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.output, Catch::Contains("already a merged report"));
  CHECK(::access((dir / "m2.json").c_str(), F_OK) != 0);
  const auto dup =
      run_cli("merge " + dir / "r1.json" + " " + dir / "r1.json" + " -o " + dir / "m3.json");
  CHECK(dup.exit_code == 2);
  CHECK_THAT(dup.output, Catch::Contains("are both rank 1"));
}

TEST_CASE("3: merge bounds the world size by the ranks given", "[defects][merge]") {
  TempDir dir;
  two_ranks(dir);
  const std::string inputs = dir / "r0.json" + " " + dir / "r1.json";
  const auto huge = run_cli("merge " + inputs + " --world-size 1000000 -o " + dir / "m.json");
  CHECK(huge.exit_code == 2);
  CHECK_THAT(huge.output, Catch::Contains("at least 1 rank in 16"));
  CHECK(::access((dir / "m.json").c_str(), F_OK) != 0);
  CHECK(run_cli("merge " + inputs + " --world-size 33 -o " + dir / "m.json").exit_code == 2);
  const auto most = run_cli("merge " + inputs + " --world-size 32 -o " + dir / "m.json");
  CHECK(most.exit_code == 0);
  CHECK(read_json(dir / "m.json")["run"]["missing_ranks"].size() == 30);
  // The key table's bound applies too.
  CHECK_THAT(run_cli("merge " + inputs + " --world-size 2000000 -o " + dir / "x.json").output,
             Catch::Contains("an integer from 1 to 1000000"));
}

TEST_CASE("4: a disabled session says so and is not a failed write", "[defects][session]") {
  trainmeter::Config c;
  c.enabled = false;
  trainmeter::Session s(c);
  { auto st = s.step(4); }
  const trainmeter::Report r = s.finish();
  CHECK(r.disabled);
  CHECK_FALSE(r.written);
  CHECK(r.status == "disabled");
  const std::string text = trainmeter::format_summary(r);
  CHECK_THAT(text, Catch::StartsWith("trainmeter: disabled"));
  CHECK(text.back() == '\n');
  // A session that wrote fine is not "disabled".
  TempDir dir;
  trainmeter::Config on;
  on.output = dir / "on.json";
  trainmeter::Session s2(on);
  const trainmeter::Report r2 = s2.finish();
  CHECK(r2.written);
  CHECK_FALSE(r2.disabled);
}

TEST_CASE("5: validate checks ranges and orderings", "[defects][schema]") {
  TempDir dir;
  const std::string good = real_report(dir, "good");
  json doc = read_json(good);
  doc["phases"]["train"]["step_time_ns"]["p50"] = 1e300;
  write_file(dir / "p50.json", doc.dump());
  const auto p50 = run_cli("validate " + dir / "p50.json");
  CHECK(p50.exit_code == 1);
  CHECK_THAT(p50.output, Catch::Contains("/phases/train/step_time_ns") &&
                             (Catch::Contains("above max") || Catch::Contains("above maximum")));
  const auto summary = run_cli("summary " + dir / "p50.json");
  CHECK(summary.exit_code == 2);
  CHECK_THAT(summary.output, Catch::Contains("not a valid report"));
  CHECK(run_cli("export " + dir / "p50.json" + " -f prom -o -").exit_code == 2);

  doc = read_json(good);
  doc["energy"]["total_j"] = -5.0;
  write_file(dir / "neg.json", doc.dump());
  const auto neg = run_cli("validate " + dir / "neg.json");
  CHECK(neg.exit_code == 1);
  CHECK_THAT(neg.output, Catch::Contains("/energy/total_j") && Catch::Contains("below minimum"));
  CHECK(trainmeter::test::schema_errors(dir / "neg.json") != "");  // Python's jsonschema agrees

  doc = read_json(good);
  doc["phases"]["train"]["step_time_ns"]["min"] =
      2 * doc["phases"]["train"]["step_time_ns"]["max"].get<double>();
  write_file(dir / "min.json", doc.dump());
  CHECK_THAT(run_cli("validate " + dir / "min.json").output, Catch::Contains("min ("));
  CHECK(run_cli("validate " + good).exit_code == 0);
}

namespace {
// The stream of a finished run with its footer removed (as if the writer died), its step lines
// carrying the given tensor peaks.
std::string crashed_stream(const TempDir& dir, const std::vector<long long>& peaks) {
  trainmeter::Config c;
  c.stream = dir / "full.jsonl";
  c.total_steps = 300;
  real_report(dir, "streamed", c);
  std::ifstream in(dir / "full.jsonl");
  std::string line, out;
  std::size_t k = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    if (j["type"] == "footer") continue;
    if (j["type"] == "step") j["peak_tensor_bytes"] = peaks[k++ % peaks.size()];
    out += j.dump() + "\n";
  }
  write_file(dir / "s.jsonl", out);
  return dir / "s.jsonl";
}
}  // namespace

TEST_CASE("6: recover keeps the steps' tensor peaks; summary shows the sampled RSS",
          "[defects][recover]") {
  TempDir dir;
  const std::string stream = crashed_stream(dir, {1000, 5000, 3000});
  const auto r = run_cli("recover " + stream + " -o " + dir / "rec.json");
  REQUIRE(r.exit_code == 0);
  const json rec = read_json(dir / "rec.json");
  CHECK(rec["memory"]["peak_tensor_bytes"] == json{{"cpu", 5000}});
  CHECK(trainmeter::test::schema_errors(dir / "rec.json") == "");
  if (rec["memory"]["sampled_peak_rss_bytes"].is_number()) {
    CHECK(rec["memory"]["peak_rss_bytes"].is_null());
    const auto s = run_cli("summary " + dir / "rec.json");
    CHECK_THAT(s.output, Catch::Contains("(sampled)"));
    CHECK_THAT(s.output, !Catch::Contains("peak RSS n/a"));
  }
}

TEST_CASE("7: the configured total reaches the report and forecast uses it",
          "[defects][forecast]") {
  TempDir dir;
  trainmeter::Config c;
  c.total_steps = 300;
  const std::string report = real_report(dir, "fc", c);
  CHECK(read_json(report)["run"]["total_steps_expected"] == 300);
  const auto f = run_cli("forecast " + report + " --json");
  REQUIRE(f.exit_code == 0);
  CHECK(json::parse(f.output)["total_steps"] == 300);
  // A stream's header records it as config.total_steps.
  const std::string stream = crashed_stream(dir, {1});
  const auto fs = run_cli("forecast " + stream + " --json");
  REQUIRE(fs.exit_code == 0);
  CHECK(json::parse(fs.output)["total_steps"] == 300);
}

TEST_CASE("9: a stale intensity series is flagged and samples_in_run counts inside the run",
          "[defects][carbon]") {
  TempDir dir;
  const std::string report = real_report(dir, "stale");
  write_file(dir / "2020.csv",
             "timestamp_utc,g_per_kwh\n2020-01-01T00:00:00Z,100\n2020-01-01T01:00:00Z,200\n");
  const auto r = run_cli("recompute " + report + " --intensity-file " + dir / "2020.csv" + " -o " +
                         dir / "out.json");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("warning") && Catch::Contains("no sample falls inside"));
  const json out = read_json(dir / "out.json");
  CHECK(out["carbon"]["time_series"]["samples_in_run"] == 0);
  bool flagged = false;
  for (const json& dg : out["diagnostics"]) flagged = flagged || dg["status"] == "stale";
  CHECK(flagged);
  CHECK(trainmeter::test::schema_errors(dir / "out.json") == "");

  // A series around the run: the sample before the run holds but is not "in" it.
  const std::string start = read_json(report)["run"]["start_utc"];
  const std::string day = start.substr(0, 10);
  write_file(dir / "today.csv", "timestamp_utc,g_per_kwh\n" + day + "T00:00:00Z,100\n");
  const auto t = run_cli("recompute " + report + " --intensity-file " + dir / "today.csv" + " -o " +
                         dir / "today.json");
  REQUIRE(t.exit_code == 0);
  CHECK_THAT(t.output, !Catch::Contains("no sample falls inside"));
  CHECK(read_json(dir / "today.json")["carbon"]["time_series"]["samples_in_run"] == 0);
}

TEST_CASE("10: CSV country codes are alpha-3; cloud rows carry provider, region and country",
          "[defects][csv]") {
  json report = trainmeter::test::make_report();
  CHECK(csv_cell(report, "country_iso_code") == "FRA");
  CHECK(csv_cell(report, "country_name") == "France");
  report["carbon"]["intensity_source"] = "cloud_region";
  report["carbon"]["region"] = "gcp:europe-west9";
  CHECK(csv_cell(report, "cloud_provider") == "gcp");
  CHECK(csv_cell(report, "cloud_region") == "europe-west9");
  CHECK(csv_cell(report, "country_iso_code") == "FRA");
  CHECK(csv_cell(report, "country_name") == "France");
  CHECK(csv_cell(report, "on_cloud") == "Y");
}

TEST_CASE("11: CSV applies PUE to every component: cpu + gpu + ram = energy_consumed",
          "[defects][csv]") {
  const json report = trainmeter::test::make_report();  // 1 + 0.5 + 0.2 kWh, PUE 1.5
  const double cpu = std::stod(csv_cell(report, "cpu_energy"));
  const double gpu = std::stod(csv_cell(report, "gpu_energy"));
  const double ram = std::stod(csv_cell(report, "ram_energy"));
  CHECK(cpu == Approx(1.5).epsilon(1e-12));
  CHECK(gpu == Approx(0.75).epsilon(1e-12));
  CHECK(ram == Approx(0.3).epsilon(1e-12));
  CHECK(cpu + gpu + ram == Approx(std::stod(csv_cell(report, "energy_consumed"))).epsilon(1e-12));
}

TEST_CASE("12: CSV cells CodeCarbon writes as numbers, its timestamp and pue formats",
          "[defects][csv]") {
  trainmeter::test::FixtureOptions o;
  o.pue = 1.0;
  o.gpu_j.reset();
  json report = trainmeter::test::make_report(o);
  report["host"]["gpus"] = json::array();
  report["energy"]["components"].erase(
      std::remove_if(report["energy"]["components"].begin(), report["energy"]["components"].end(),
                     [](const json& c) { return c["name"] == "gpu:0"; }),
      report["energy"]["components"].end());
  report["run"]["cpu_time_s"] = {{"user", 300.0}, {"system", 100.0}};
  CHECK(csv_cell(report, "timestamp") == "2024-05-01T10:00:01");
  CHECK(csv_cell(report, "pue") == "1.0");
  CHECK(csv_cell(report, "gpu_power") == "0");  // no GPU: exactly 0, as CodeCarbon
  CHECK(csv_cell(report, "gpu_energy") == "0");
  CHECK(csv_cell(report, "gpu_utilization_percent") == "0");
  CHECK(csv_cell(report, "water_consumed") == "0.0");
  CHECK(csv_cell(report, "wue") == "0.0");
  CHECK(std::stod(csv_cell(report, "cpu_utilization_percent")) == Approx(50.0));  // 400 / (100 x 8)
  CHECK(std::stod(csv_cell(report, "ram_used_gb")) == Approx(1.5e6 / 1073741824.0));
  CHECK(std::stod(csv_cell(report, "ram_utilization_percent")) ==
        Approx(100.0 * 1.5e6 / 17179869184.0));
  // Several GPU models: counted per model.
  report["host"]["gpus"] = json::array({{{"index", 0}, {"name", "A100"}},
                                        {{"index", 1}, {"name", "A100"}},
                                        {{"index", 2}, {"name", "V100"}}});
  CHECK(csv_cell(report, "gpu_model") == "2 x A100, 1 x V100");
  CHECK(csv_cell(report, "gpu_count") == "3");
  CHECK(csv_cell(report, "gpu_utilization_percent").empty());  // GPUs present, not sampled
}

TEST_CASE("13: numeric bounds come from the key table, for config and CLI alike",
          "[defects][config]") {
  const trainmeter::ConfigKey& tdp = trainmeter::config_key("cpu_tdp_w");
  CHECK(tdp.min_value == 1.0);
  CHECK(tdp.max_value == 5000.0);
  CHECK(std::string(tdp.accepted) == "a number of watts from 1 to 5000");
  CHECK(std::isnan(trainmeter::config_key("run_name").min_value));
  {
    ScopedEnv e("TRAINMETER_CPU_TDP_W", "3000");
    CHECK(trainmeter::Config::from_env().cpu_tdp_w == 3000.0);
  }
  {
    ScopedEnv e("TRAINMETER_CPU_TDP_W", "6000");
    CHECK_THROWS_WITH(trainmeter::Config::from_env(), Catch::Contains("from 1 to 5000"));
  }
  const auto dev = run_cli("estimate --hours 1 --device-power-w 1e9");
  CHECK(dev.exit_code == 2);
  CHECK_THAT(dev.output, Catch::Contains("TRAINMETER_CPU_TDP_W") && Catch::Contains("5000"));
  CHECK(run_cli("estimate --hours 1 --device-power-w 5000 --json").exit_code == 0);
  const auto hours = run_cli("estimate --hours 1e308 --cpu-power-w 100 --json");
  CHECK(hours.exit_code == 2);
  CHECK_THAT(hours.output, !Catch::Contains("inf"));
  const auto price = run_cli("estimate --hours 1 --cpu-power-w 100 --price-per-hour 1e300");
  CHECK(price.exit_code == 2);
  CHECK_THAT(price.output, Catch::Contains("TRAINMETER_PRICE_PER_HOUR"));
  // The largest accepted inputs still give finite JSON numbers, never null.
  const auto big = run_cli(
      "estimate --hours 1e6 --devices 1000000 --device-power-w 5000 --cpu-power-w 5000 "
      "--ram-power-w 5000 --pue 3 --intensity 2000 --json");
  REQUIRE(big.exit_code == 0);
  const json j = json::parse(big.output);
  CHECK(j["energy_kwh"].is_number());
  CHECK(j["co2e_kg"].is_number());
  TempDir dir;
  const std::string report = real_report(dir, "bounds");
  const auto rc = run_cli("recompute " + report + " --price-per-hour 1e300");
  CHECK(rc.exit_code == 2);
  CHECK_THAT(rc.output, Catch::Contains("from 0 to 1000000"));
}

TEST_CASE("14: config validation gaps", "[defects][config]") {
  TempDir dir;
  {
    ScopedEnv e("TRAINMETER_CONFIG_FILE", dir.path());
    CHECK_THROWS_WITH(trainmeter::Config::from_env(), Catch::Contains("not a regular file"));
  }
  {
    ScopedEnv e("TRAINMETER_RUN_ID", "a b");
    CHECK_THROWS_WITH(trainmeter::Config::from_env(), Catch::Contains("TRAINMETER_RUN_ID"));
  }
  for (const char* v : {"1", "true", "yes", "on"}) {
    ScopedEnv e("TRAINMETER_PROGRESS", v);
    CHECK(trainmeter::Config::from_env().progress == "on");
  }
  {
    ScopedEnv e("TRAINMETER_PROGRESS", "0");
    CHECK(trainmeter::Config::from_env().progress == "off");
  }
  const std::pair<const char*, const char*> bad[] = {{"TRAINMETER_COUNTRY", "ZZ"},
                                                     {"TRAINMETER_CLOUD_REGION", "gcp:nowhere"},
                                                     {"TRAINMETER_CURRENCY", ""}};
  for (const auto& [name, value] : bad) {
    ScopedEnv e(name, value);
    const auto r = run_cli("config --effective");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(name));
    // What `config --effective` refuses, the program refuses too (at construction).
    CHECK_THROWS_AS(trainmeter::Session(trainmeter::Config::from_env()), trainmeter::Error);
  }
}

TEST_CASE("15: messages", "[defects][cli]") {
  TempDir dir;
  const std::string report = real_report(dir, "msg");
  const auto rec = run_cli("recover " + report);
  CHECK(rec.exit_code == 2);
  CHECK_THAT(rec.output, Catch::Contains("is a report, not a stream"));
  {
    ScopedEnv e("TRAINMETER_WARMUP_STEPS", "x");
    const auto c = run_cli("config --effective");
    CHECK(c.exit_code == 2);
    CHECK_THAT(c.output, Catch::StartsWith("trainmeter config: invalid configuration:"));
  }
  {
    write_file(dir / "bad.conf", "warmup_steps = x\n");
    ScopedEnv e("TRAINMETER_CONFIG_FILE", dir / "bad.conf");
    const auto c = run_cli("config --effective");
    CHECK_THAT(c.output, !Catch::Contains("trainmeter: "));
  }
  ::mkdir((dir / "dir.json").c_str(), 0755);
  const auto m = run_cli("merge " + report + " -o " + dir / "dir.json");
  CHECK(m.exit_code == 2);
  const std::string once = "cannot write " + dir / "dir.json";
  CHECK(m.output.find(once) != std::string::npos);
  CHECK(m.output.find(once, m.output.find(once) + 1) == std::string::npos);
  const auto ex = run_cli("export " + report);
  CHECK(ex.exit_code == 2);
  CHECK_THAT(ex.output,
             Catch::Contains("--format (-f) is required; accepted: csv, prom, trace, html"));
  const auto probe = run_cli("probe --help");
  CHECK_THAT(probe.output, Catch::StartsWith("usage: trainmeter probe [--json]"));
  const auto empty_out = run_cli("recover " + report + " -o ''");
  CHECK(empty_out.exit_code == 2);
  CHECK_THAT(empty_out.output, Catch::Contains("--out (-o) needs a file path"));
  const auto nothing = run_cli("recompute " + report);
  CHECK(nothing.exit_code == 2);
  CHECK_THAT(nothing.output, Catch::Contains("nothing to recompute"));
  json doc = read_json(report);
  doc["phases"]["train"]["steps"] = "many";
  write_file(dir / "invalid.json", doc.dump());
  for (const std::string& cmd : {"forecast " + dir / "invalid.json" + " --total-steps 10",
                                 "recompute " + dir / "invalid.json" + " --pue 1.2"}) {
    const auto r = run_cli(cmd);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("not a valid report"));
  }
}

TEST_CASE("16: --json for summary, validate and config --effective", "[defects][cli]") {
  TempDir dir;
  const std::string report = real_report(dir, "js");
  const auto s = run_cli("summary " + report + " --json");
  REQUIRE(s.exit_code == 0);
  const json sj = json::parse(s.output);
  CHECK(sj["run"]["name"] == "js");
  CHECK(sj["phases"]["train"]["steps"] == 5);
  CHECK(sj["phases"]["train"]["warmup_steps"] == 1);
  CHECK(sj["report"] == report);
  json doc = read_json(report);
  doc["energy"]["total_j"] = -1.0;
  write_file(dir / "bad.json", doc.dump());
  const auto v = run_cli("validate " + report + " " + dir / "bad.json" + " --json");
  CHECK(v.exit_code == 1);
  const json vj = json::parse(v.output);
  REQUIRE(vj.size() == 2);
  CHECK(vj[0]["valid"] == true);
  CHECK(vj[1]["valid"] == false);
  CHECK(vj[1]["errors"].size() >= 1);
  ScopedEnv e("TRAINMETER_PUE", "1.25");
  const auto c = run_cli("config --effective --json");
  REQUIRE(c.exit_code == 0);
  CHECK(json::parse(c.output)["TRAINMETER_PUE"] == "1.25");
}

TEST_CASE("20: warm-up steps are outside loss.first and samples; the schema says so",
          "[defects][report]") {
  TempDir dir;
  const json r = read_json(real_report(dir, "warm"));  // losses 10, 9, 8, 7, 6; warm-up 1
  const json& p = r["phases"]["train"];
  CHECK(p["loss"]["first"] == 9.0);
  CHECK(p["loss"]["last"] == 6.0);
  CHECK(p["samples"] == 16);
  CHECK(trainmeter::config_key("warmup_steps").default_text == std::string("1"));
  const json schema = json::parse(read_file(TRAINMETER_SCHEMA_PATH));
  const std::string description = schema["definitions"]["phase"]["description"];
  CHECK_THAT(description, Catch::Contains("non-warm-up steps only"));
  CHECK(schema["definitions"]["phase"]["properties"]["loss"]["required"].size() == 4);
  CHECK_THAT(
      schema["definitions"]["run"]["properties"]["duration_s"]["description"].get<std::string>(),
      Catch::Contains("Session"));
}
