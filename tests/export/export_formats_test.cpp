// Exporters: CodeCarbon CSV, Prometheus text (checked by promtool), Chrome trace, HTML (rendered
// by headless Chromium), each with names holding quotes, backslashes, newlines and non-ASCII.
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "export/csv.hpp"
#include "export/exports.hpp"
#include "export/report_fixture.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::kTrickyName;
using trainmeter::test::make_report;
using trainmeter::test::run_command;
using trainmeter::test::TempDir;
namespace d = trainmeter::detail;

namespace {

bool executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// Rows of a CSV file as Python's csv module reads them (an independent reader).
json python_csv_rows(const std::string& path) {
  const auto r =
      run_command(std::string(TRAINMETER_PYTHON) +
                  " -c 'import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], "
                  "newline=\"\", encoding=\"utf-8\")))))' " +
                  quote(path));
  REQUIRE(r.exit_code == 0);
  return json::parse(r.output);
}

std::size_t column(const std::string& name) {
  const auto& cols = d::csv_columns();
  return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
}

}  // namespace

TEST_CASE("CSV rows carry CodeCarbon's columns and units", "[export][csv]") {
  REQUIRE(d::csv_columns().size() == 38);
  TempDir dir;
  const std::string path = dir / "emissions.csv";
  const json report = make_report();
  REQUIRE(d::write_export(report, "csv", path).empty());
  REQUIRE(d::write_export(report, "csv", path).empty());
  const json rows = python_csv_rows(path);
  REQUIRE(rows.size() == 3);  // header once, then one row per export
  CHECK(rows[0].get<std::vector<std::string>>() == d::csv_columns());
  const json& row = rows[1];
  auto cell = [&](const char* name) { return row[column(name)].get<std::string>(); };
  auto num = [&](const char* name) { return std::stod(cell(name)); };
  CHECK(cell("project_name") == kTrickyName);
  CHECK(cell("experiment_id") == "exp \"1\"");
  CHECK(num("duration") == 100.0);
  CHECK(num("emissions") == 0.57);
  CHECK(num("emissions_rate") == Approx(0.0057).epsilon(1e-12));
  CHECK(num("cpu_energy") == 1.0);                               // 3.6e6 J
  CHECK(num("gpu_energy") == 0.5);                               // 1.8e6 J
  CHECK(num("ram_energy") == 0.2);                               // 7.2e5 J
  CHECK(num("energy_consumed") == Approx(2.55).epsilon(1e-12));  // 1.7 kWh x PUE 1.5
  CHECK(num("cpu_power") == 36000.0);  // the fixture's average_power_w = J / 100
  CHECK(num("gpu_power") == 18000.0);
  CHECK(num("ram_power") == 7200.0);
  CHECK(cell("country_iso_code") == "FR");
  CHECK(cell("country_name") == "France");
  CHECK(cell("cpu_count") == "8");
  CHECK(cell("gpu_count") == "1");
  CHECK(cell("gpu_model") == "1 x Test GPU");
  CHECK(num("ram_total_size") == 16.0);
  CHECK(num("ram_used_gb") == 1.0);
  CHECK(cell("on_cloud") == "N");
  CHECK(num("pue") == 1.5);
  CHECK(cell("water_consumed").empty());  // not measured: empty, never 0
  CHECK(cell("tracking_mode") == "process");

  // Our reader agrees with Python's.
  const d::CsvTable t = d::parse_csv(trainmeter::test::read_file(path), path);
  REQUIRE(t.error.empty());
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[1][column("project_name")] == kTrickyName);
}

TEST_CASE("CSV: null figures are empty cells", "[export][csv]") {
  trainmeter::test::FixtureOptions o;
  o.cpu_j.reset();
  o.gpu_j.reset();
  o.dram_j.reset();
  o.co2e_kg.reset();
  const json report = make_report(o);
  const d::CsvTable t = d::parse_csv(d::csv_header_line() + d::csv_row_line(report), "x");
  REQUIRE(t.error.empty());
  for (const char* c : {"emissions", "emissions_rate", "cpu_energy", "gpu_energy", "ram_energy",
                        "energy_consumed", "cpu_power", "country_iso_code"})
    CHECK(t.rows[1][column(c)].empty());
}

TEST_CASE("CSV appends refuse a foreign or damaged file", "[export][csv][bad-input]") {
  TempDir dir;
  const json report = make_report();
  const std::string foreign = dir / "foreign.csv";
  trainmeter::test::write_file(foreign, "a,b\n1,2\n");
  std::string e = d::write_export(report, "csv", foreign);
  CHECK(e.find(foreign + ": line 1: the header is not CodeCarbon") == 0);
  CHECK(trainmeter::test::read_file(foreign) == "a,b\n1,2\n");

  const std::string torn = dir / "torn.csv";
  trainmeter::test::write_file(torn, d::csv_header_line() + "\"2024,unterminated");
  e = d::write_export(report, "csv", torn);
  CHECK(e.find(torn + ": line 2, column") == 0);
  CHECK(e.find("unterminated quoted field") != std::string::npos);

  CHECK(d::parse_csv("a,b\n1,2,3\n", "f.csv").error ==
        "f.csv: line 2, column 1: 3 fields where the header has 2");
  CHECK(d::parse_csv("a,b\n\"x\"y,2\n", "f.csv").error ==
        "f.csv: line 2, column 4: text after a closing quote");
  CHECK(d::parse_csv("a,b\nx\"y,2\n", "f.csv").error ==
        "f.csv: line 2, column 2: a quote inside an unquoted field");
  const d::CsvTable ok = d::parse_csv("a,b\r\n\"multi\nline \"\"q\"\"\",2\r\n", "f.csv");
  REQUIRE(ok.error.empty());
  CHECK(ok.rows[1][0] == "multi\nline \"q\"");
}

TEST_CASE("Prometheus text passes promtool and carries exact values", "[export][prom]") {
  const json report = make_report();
  const std::string text = d::prometheus_text(report);
  // Label escaping of the tricky run name: \" \\ \n, UTF-8 kept.
  CHECK(text.find("run=\"run \\\"q\\\" \\\\ back\\nline, caf\xc3\xa9 \xe2\x9c\x93\"") !=
        std::string::npos);
  // Step time p50 of the fixture's non-warm-up steps {1, 1.5, 1, 2} ms is 1.25 ms.
  CHECK(text.find("quantile=\"0.5\"} 0.00125\n") != std::string::npos);
  CHECK(text.find("trainmeter_step_time_seconds_count{") != std::string::npos);
  CHECK(text.find("phase=\"train\"} 4\n") != std::string::npos);
  CHECK(text.find("component=\"cpu\",provenance=\"measured\"} 3600000\n") != std::string::npos);
  CHECK(text.find("trainmeter_co2e_grams_total{") != std::string::npos);
  CHECK(text.find("} 570\n") != std::string::npos);
  CHECK(text.find("trainmeter_peak_rss_bytes{") != std::string::npos);
  CHECK(text.find(",device=\"cpu\"} 2048\n") != std::string::npos);

  trainmeter::test::FixtureOptions o;
  o.co2e_kg.reset();
  CHECK(d::prometheus_text(make_report(o)).find("co2e") == std::string::npos);  // absent, not 0

  const std::string promtool = "/usr/bin/promtool";
  if (!executable(promtool)) {
    WARN("promtool not installed (Debian package prometheus): lint check not run");
    return;
  }
  TempDir dir;
  const std::string path = dir / "run.prom";
  REQUIRE(d::write_export(report, "prom", path).empty());
  const auto r = run_command(promtool + " check metrics < " + quote(path));
  INFO(r.output);
  CHECK(r.exit_code == 0);
}

TEST_CASE("Chrome trace: steps, phases and counters", "[export][trace]") {
  json report = make_report();
  // A second thread running an eval phase with a tricky name.
  report["steps"].push_back({{"index", 5},
                             {"phase", kTrickyName},
                             {"thread", 1},
                             {"start_offset_ns", 3000},
                             {"wall_ns", 4000},
                             {"samples", 0},
                             {"tokens", 0},
                             {"warmup", false}});
  TempDir dir;
  const std::string path = dir / "t.trace.json";
  REQUIRE(d::write_export(report, "trace", path).empty());
  const json t = trainmeter::test::read_json(path);
  int steps = 0, phases = 0, memory = 0, power = 0;
  bool tricky = false;
  for (const auto& e : t["traceEvents"]) {
    const std::string ph = e["ph"], name = e["name"];
    if (ph == "X" && e["cat"] == "step") {
      ++steps;
      if (name == kTrickyName) {
        tricky = true;
        CHECK(e["ts"].get<double>() == 3.0);  // 3000 ns
        CHECK(e["dur"].get<double>() == 4.0);
        CHECK(e["tid"] == 1);
      }
    }
    if (ph == "X" && e["cat"] == "phase") {
      ++phases;
      if (name == "phase train") {
        CHECK(e["ts"].get<double>() == 0.0);
        CHECK(e["dur"].get<double>() == 7500.0);  // 2+1+1.5+1+2 ms
        CHECK(e["args"]["steps"] == 5);
      }
    }
    if (ph == "C" && name == "memory") ++memory;
    if (ph == "C" && name == "power") {
      ++power;
      if (e["ts"].get<double>() == 0.0)
        CHECK(e["args"]["step_average_w"].get<double>() == Approx(250.0));  // 0.5 J / 2 ms
    }
  }
  CHECK(steps == 6);
  CHECK(phases == 2);
  CHECK(memory == 3);
  CHECK(power == 5);
  CHECK(tricky);
  CHECK(t["otherData"]["run"]["name"] == kTrickyName);
}

TEST_CASE("HTML page: self-contained, escaped, charts present", "[export][html]") {
  const json report = make_report();
  const std::string html = d::html_page(report);
  for (const char* id :
       {"chart-step-times", "chart-histogram", "chart-memory", "chart-energy", "diagnostics-table"})
    CHECK(html.find(std::string("id=\"") + id + "\"") != std::string::npos);
  CHECK(html.find("class=\"warmup\"") != std::string::npos);
  CHECK(html.find("a &quot;quoted&quot; &lt;message&gt; &amp; more") != std::string::npos);
  CHECK(html.find("run &quot;q&quot; \\ back\nline, caf\xc3\xa9") != std::string::npos);
  CHECK(html.find("<message>") == std::string::npos);
  // No network: nothing is fetched from elsewhere.
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("href=\"http") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);

  // Every SVG chart is well-formed XML (Python's strict parser).
  TempDir dir;
  const std::string path = dir / "r.html";
  REQUIRE(d::write_export(report, "html", path).empty());
  const auto xml = run_command(
      std::string(TRAINMETER_PYTHON) +
      " -c 'import re,sys,xml.dom.minidom as m; t=open(sys.argv[1],encoding=\"utf-8\").read(); "
      "s=re.findall(r\"<svg.*?</svg>\", t, re.S); [m.parseString(x.encode()) for x in s]; "
      "print(len(s))' " +
      quote(path));
  INFO(xml.output);
  REQUIRE(xml.exit_code == 0);
  CHECK(xml.output == "4\n");
}

TEST_CASE("HTML page renders in headless Chromium without errors", "[export][html][chromium]") {
  const std::string chromium = "/usr/bin/chromium";
  if (!executable(chromium)) {
    WARN("chromium not installed: browser rendering check not run");
    return;
  }
  TempDir dir;
  const std::string path = dir / "r.html";
  REQUIRE(d::write_export(make_report(), "html", path).empty());
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage "
      "--user-data-dir=" +
      quote(dir / "profile") + " --window-size=800,1200 ";
  const auto dom = run_command("timeout 120 " + chromium + flags + "--dump-dom " +
                               quote("file://" + path) + " 2>/dev/null");
  REQUIRE(dom.exit_code == 0);
  CHECK(dom.output.find("data-tm-charts=\"4\"") != std::string::npos);
  const std::string root = dom.output.substr(0, dom.output.find('>', dom.output.find("<html")));
  INFO(root);
  CHECK(root.find("data-tm-errors") == std::string::npos);  // the error hook's attribute
  CHECK(dom.output.find("id=\"chart-step-times\"") != std::string::npos);

  const std::string png = dir / "shot.png";
  const auto shot = run_command("timeout 120 " + chromium + flags + "--screenshot=" + quote(png) +
                                " " + quote("file://" + path) + " >/dev/null 2>&1");
  REQUIRE(shot.exit_code == 0);
  // Not blank: decode the PNG (stdlib only) and count distinct colours.
  const auto colours =
      run_command(std::string(TRAINMETER_PYTHON) + " " +
                  quote(std::string(TRAINMETER_SOURCE_DIR) + "/tests/export/png_colours.py") + " " +
                  quote(png));
  INFO(colours.output);
  REQUIRE(colours.exit_code == 0);
  CHECK(std::stoi(colours.output) >= 6);
}

TEST_CASE("The fixture report is schema-valid", "[export][fixture]") {
  TempDir dir;
  trainmeter::test::write_report(dir / "r.json", make_report());
  CHECK(trainmeter::test::schema_errors(dir / "r.json") == "");
}
