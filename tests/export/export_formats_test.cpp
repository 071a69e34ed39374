// Exporters: CodeCarbon CSV, Prometheus text (checked by promtool), Chrome trace, HTML (rendered
// by headless Chromium), each with names holding quotes, backslashes, newlines and non-ASCII.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "base/values.hpp"
#include "export/csv.hpp"
#include "export/exports.hpp"
#include "export/report_fixture.hpp"
#include "report/json_io.hpp"
#include "report/summary.hpp"
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

// CodeCarbon 3's emissions.csv header, typed out from its `EmissionsData` dataclass
// (codecarbon/output_methods/emissions_data.py, fields in declaration order; the defaulted
// utilisation, on_cloud, pue and wue fields come last), not taken from our own column list.
const std::vector<std::string> kCodeCarbonHeader = {"timestamp",
                                                    "project_name",
                                                    "run_id",
                                                    "experiment_id",
                                                    "duration",
                                                    "emissions",
                                                    "emissions_rate",
                                                    "cpu_power",
                                                    "gpu_power",
                                                    "ram_power",
                                                    "cpu_energy",
                                                    "gpu_energy",
                                                    "ram_energy",
                                                    "energy_consumed",
                                                    "water_consumed",
                                                    "country_name",
                                                    "country_iso_code",
                                                    "region",
                                                    "cloud_provider",
                                                    "cloud_region",
                                                    "os",
                                                    "python_version",
                                                    "codecarbon_version",
                                                    "cpu_count",
                                                    "cpu_model",
                                                    "gpu_count",
                                                    "gpu_model",
                                                    "longitude",
                                                    "latitude",
                                                    "ram_total_size",
                                                    "tracking_mode",
                                                    "cpu_utilization_percent",
                                                    "gpu_utilization_percent",
                                                    "ram_utilization_percent",
                                                    "ram_used_gb",
                                                    "on_cloud",
                                                    "pue",
                                                    "wue"};

// The Prometheus text exposition (format 0.0.4) parsed independently of the writer: each sample
// line `name{label="value",...} value` becomes "name{k=v,...}" (labels sorted by name, values
// unescaped) -> value; comments are checked for HELP/TYPE pairs. A line that does not parse
// fails the test.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, summary
};

std::string sample_key(const std::string& name, std::map<std::string, std::string> labels) {
  std::string out = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    out += (first ? "" : ",") + k + "=" + v;
    first = false;
  }
  return out + "}";
}

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    INFO("line " << number << ": " << line);
    REQUIRE(!line.empty());
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, family, rest;
      words >> hash >> kind >> family;
      REQUIRE((kind == "HELP" || kind == "TYPE"));
      std::getline(words, rest);
      REQUIRE(rest.size() > 1);
      if (kind == "TYPE") e.types[family] = rest.substr(1);
      continue;
    }
    std::size_t i = 0;
    while (i < line.size() &&
           (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':'))
      ++i;
    const std::string name = line.substr(0, i);
    REQUIRE(!name.empty());
    std::map<std::string, std::string> labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        REQUIRE(eq != std::string::npos);
        const std::string key = line.substr(i, eq - i);
        REQUIRE(eq + 1 < line.size());
        REQUIRE(line[eq + 1] == '"');
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            REQUIRE(j + 1 < line.size());
            const char c = line[++j];
            REQUIRE((c == '\\' || c == '"' || c == 'n'));
            value += c == 'n' ? '\n' : c;
          } else {
            value += line[j];
          }
        }
        REQUIRE(j < line.size());
        REQUIRE(labels.count(key) == 0);
        labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      REQUIRE(i < line.size());
      ++i;  // '}'
    }
    REQUIRE(i < line.size());
    REQUIRE(line[i] == ' ');
    const std::string value = line.substr(i + 1);
    std::size_t used = 0;
    const double v = std::stod(value, &used);
    REQUIRE(used == value.size());  // no timestamp, no trailing text
    const std::string key = sample_key(name, labels);
    REQUIRE(e.samples.count(key) == 0);
    e.samples[key] = v;
  }
  return e;
}

std::size_t column(const std::string& name) {
  const auto& cols = kCodeCarbonHeader;
  const auto at = std::find(cols.begin(), cols.end(), name);
  REQUIRE(at != cols.end());
  return static_cast<std::size_t>(at - cols.begin());
}

}  // namespace

TEST_CASE("CSV rows carry CodeCarbon's columns and units", "[export][csv]") {
  REQUIRE(kCodeCarbonHeader.size() == 38);
  TempDir dir;
  const std::string path = dir / "emissions.csv";
  const json report = make_report();
  REQUIRE(d::write_export(report, "csv", path).empty());
  REQUIRE(d::write_export(report, "csv", path).empty());
  const json rows = python_csv_rows(path);
  REQUIRE(rows.size() == 3);  // header once, then one row per export
  CHECK(rows[0].get<std::vector<std::string>>() == kCodeCarbonHeader);
  const json& row = rows[1];
  auto cell = [&](const char* name) { return row[column(name)].get<std::string>(); };
  auto num = [&](const char* name) { return std::stod(cell(name)); };
  CHECK(cell("project_name") == kTrickyName);
  CHECK(cell("experiment_id") == "exp \"1\"");
  CHECK(num("duration") == 100.0);
  CHECK(num("emissions") == 0.57);
  CHECK(num("emissions_rate") == Approx(0.0057).epsilon(1e-12));
  // CodeCarbon multiplies each component by PUE: the three sum to energy_consumed.
  CHECK(num("cpu_energy") == Approx(1.5).epsilon(1e-12));        // 3.6e6 J x PUE 1.5
  CHECK(num("gpu_energy") == Approx(0.75).epsilon(1e-12));       // 1.8e6 J x 1.5
  CHECK(num("ram_energy") == Approx(0.3).epsilon(1e-12));        // 7.2e5 J x 1.5
  CHECK(num("energy_consumed") == Approx(2.55).epsilon(1e-12));  // 1.7 kWh x PUE 1.5
  CHECK(num("cpu_power") == 36000.0);  // the fixture's average_power_w = J / 100
  CHECK(num("gpu_power") == 18000.0);
  CHECK(num("ram_power") == 7200.0);
  CHECK(cell("country_iso_code") == "FRA");  // alpha-3, as CodeCarbon's tables
  CHECK(cell("country_name") == "France");
  CHECK(cell("cpu_count") == "8");
  CHECK(cell("gpu_count") == "1");
  CHECK(cell("gpu_model") == "1 x Test GPU");
  CHECK(num("ram_total_size") == 16.0);
  CHECK(num("ram_used_gb") == Approx(1.5e6 / 1073741824.0));  // mean sampled RSS (process mode)
  CHECK(cell("on_cloud") == "N");
  CHECK(num("pue") == 1.5);
  CHECK(cell("water_consumed") == "0.0");  // energy x wue, wue 0 (CodeCarbon's default)
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
  INFO(text);
  const Exposition e = parse_exposition(text);
  // Every sample carries the run's labels; the tricky name comes back unescaped, byte for byte.
  auto key = [](const std::string& name, std::map<std::string, std::string> extra = {}) {
    extra["run"] = kTrickyName;
    extra["run_id"] = "id-" + kTrickyName;
    extra["rank"] = "0";
    return sample_key(name, extra);
  };
  // The fixture's non-warm-up steps are {1, 1.5, 1, 2} ms; sorted {1, 1, 1.5, 2}, quantile q at
  // position 3q: p50 1.25 ms, p90 1.5 + 0.7 x 0.5 = 1.85 ms, p95 1.925 ms, p99 1.985 ms.
  const std::map<std::string, double> expected = {
      {key("trainmeter_step_time_seconds", {{"phase", "train"}, {"quantile", "0.5"}}), 0.00125},
      {key("trainmeter_step_time_seconds", {{"phase", "train"}, {"quantile", "0.9"}}), 0.00185},
      {key("trainmeter_step_time_seconds", {{"phase", "train"}, {"quantile", "0.95"}}), 0.001925},
      {key("trainmeter_step_time_seconds", {{"phase", "train"}, {"quantile", "0.99"}}), 0.001985},
      {key("trainmeter_step_time_seconds_sum", {{"phase", "train"}}), 0.0055},  // 5.5 ms
      {key("trainmeter_step_time_seconds_count", {{"phase", "train"}}), 4},
      {key("trainmeter_steps_total", {{"phase", "train"}}), 5},  // warm-up included
      {key("trainmeter_run_duration_seconds"), 100},
      {key("trainmeter_energy_joules_total", {{"component", "cpu"}, {"provenance", "measured"}}),
       3.6e6},
      {key("trainmeter_energy_joules_total", {{"component", "dram"}, {"provenance", "measured"}}),
       7.2e5},
      {key("trainmeter_energy_joules_total", {{"component", "gpu:0"}, {"provenance", "measured"}}),
       1.8e6},
      {key("trainmeter_co2e_grams_total"), 570},  // 0.57 kg
      {key("trainmeter_grid_intensity_grams_per_kwh"), 56},
      {key("trainmeter_peak_rss_bytes"), 1073741824},
      {key("trainmeter_peak_tensor_bytes", {{"device", "cpu"}}), 2048},
  };
  CHECK(e.samples.size() == expected.size());
  for (const auto& [k, v] : expected) {
    INFO(k);
    REQUIRE(e.samples.count(k) == 1);
    CHECK(e.samples.at(k) == Approx(v).epsilon(1e-12));
  }
  const std::map<std::string, std::string> types = {
      {"trainmeter_step_time_seconds", "summary"},
      {"trainmeter_steps_total", "counter"},
      {"trainmeter_run_duration_seconds", "gauge"},
      {"trainmeter_energy_joules_total", "counter"},
      {"trainmeter_co2e_grams_total", "counter"},
      {"trainmeter_grid_intensity_grams_per_kwh", "gauge"},
      {"trainmeter_peak_rss_bytes", "gauge"},
      {"trainmeter_peak_tensor_bytes", "gauge"}};
  CHECK(e.types == types);

  trainmeter::test::FixtureOptions o;
  o.co2e_kg.reset();
  const Exposition no_carbon = parse_exposition(d::prometheus_text(make_report(o)));
  CHECK(no_carbon.samples.count(key("trainmeter_co2e_grams_total")) == 0);  // absent, not 0
  CHECK(no_carbon.types.count("trainmeter_co2e_grams_total") == 0);
  CHECK(no_carbon.samples.count(key("trainmeter_grid_intensity_grams_per_kwh")) == 0);
  CHECK(no_carbon.samples.size() == expected.size() - 2);  // no carbon section: both absent
}

// [tools]: needs an external program; where it is missing the case is skipped, and CTest says
// so (export_test_tools).
TEST_CASE("Prometheus text passes promtool check metrics", "[export][prom][tools]") {
  const std::string promtool = "/usr/bin/promtool";
  if (!executable(promtool)) {
    trainmeter::test::skip_test("promtool not installed (Debian package prometheus)");
    return;
  }
  const json report = make_report();
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
  CHECK(xml.output == "8\n");  // step times, loss, histogram, throughput, memory, energy
                               // (bars, over time, power)
}

// The page in a real browser: no script error, every chart rendered, and the new sections'
// content on the screenshot: each time chart's legend swatch (a solid 10 px square of the
// series' colour) found in the pixels, in page order (memory above energy, energy over time and
// power both drawn, throughput below the histogram).
TEST_CASE("HTML page renders in headless Chromium without errors",
          "[export][html][chromium][tools]") {
  const std::string chromium = "/usr/bin/chromium";
  if (!executable(chromium)) {
    trainmeter::test::skip_test("chromium not installed (Debian package chromium)");
    return;
  }
  TempDir dir;
  const std::string path = dir / "r.html";
  json report = make_report();
  report["energy"]["components"][2]["provenance"] = "estimated";  // gpu:0
  report["energy"]["timeline"] = {
      {"points", 3},
      {"decimations", 0},
      {"max_points", 100},
      {"columns", {"t_offset_ns", "cpu", "gpu:0"}},
      {"rows", {{0, 0.0, 0.0}, {1e9, 100.0, 50.0}, {2e9, 300.0, 50.0}}}};
  for (auto& s : report["steps"]) {
    s["peak_tensor_bytes"] = 1000000;
    s["peak_cuda_tensor_bytes"] = {{"cuda:0", 1500000}};
  }
  REQUIRE(d::write_export(report, "html", path).empty());
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage "
      "--force-device-scale-factor=1 --hide-scrollbars --user-data-dir=" +
      quote(dir / "profile") + " --window-size=800,7000 ";
  const auto dom = run_command("timeout 120 " + chromium + flags + "--dump-dom " +
                               quote("file://" + path) + " 2>/dev/null");
  REQUIRE(dom.exit_code == 0);
  CHECK(dom.output.find("data-tm-charts=\"8\"") != std::string::npos);
  const std::string root = dom.output.substr(0, dom.output.find('>', dom.output.find("<html")));
  INFO(root);
  CHECK(root.find("data-tm-errors") == std::string::npos);  // the error hook's attribute
  for (const char* id :
       {"chart-step-times", "chart-throughput", "chart-memory", "chart-energy-time", "chart-power"})
    CHECK(dom.output.find(std::string("id=\"") + id + "\"") != std::string::npos);
  CHECK(dom.output.find(">gpu:0 (estimated)</text>") != std::string::npos);
  CHECK(dom.output.find(">dram over time: not measured</text>") != std::string::npos);
  CHECK(dom.output.find(">tensors (cuda:0) per-step peak</text>") != std::string::npos);

  const std::string png = dir / "shot.png";
  const auto shot = run_command("timeout 120 " + chromium + flags + "--screenshot=" + quote(png) +
                                " " + quote("file://" + path) + " >/dev/null 2>&1");
  REQUIRE(shot.exit_code == 0);
  // Decode the PNG (stdlib only): distinct colours, then per colour pixels, first and last row.
  const char* const kColours[] = {"2ca02c", "1f77b4", "e9a400", "118ab2", "b5179e", "2a9d8f"};
  std::string args;
  for (const char* c : kColours) args += std::string(" ") + c;
  const auto colours =
      run_command(std::string(TRAINMETER_PYTHON) + " " +
                  quote(std::string(TRAINMETER_SOURCE_DIR) + "/tests/export/png_colours.py") + " " +
                  quote(png) + args);
  INFO(colours.output);
  REQUIRE(colours.exit_code == 0);
  std::istringstream in(colours.output);
  int distinct = 0;
  in >> distinct;
  CHECK(distinct >= 6);
  std::map<std::string, std::array<long, 3>> at;  // colour -> pixels, first row, last row
  std::string hex;
  long n = 0, first = 0, last = 0;
  while (in >> hex >> n >> first >> last) at[hex] = {n, first, last};
  for (const char* c : kColours) {
    INFO(c);
    REQUIRE(at.count(c) == 1);
    CHECK(at[c][0] >= 100);  // at least one whole swatch (or the histogram's bars)
  }
  // Throughput (phase colour, below the histogram's green bars) is drawn below the histogram.
  CHECK(at["1f77b4"][2] > at["2ca02c"][1]);
  // Memory (tensors, CUDA) above energy; the component colours in two charts (energy over
  // time, then power), at least one chart height (240 px) apart.
  CHECK(at["e9a400"][1] < at["b5179e"][1]);
  CHECK(at["118ab2"][1] < at["2a9d8f"][1]);
  CHECK(at["b5179e"][2] - at["b5179e"][1] >= 240);
  CHECK(at["2a9d8f"][2] - at["2a9d8f"][1] >= 240);
}

TEST_CASE("The fixture report is schema-valid", "[export][fixture]") {
  TempDir dir;
  trainmeter::test::write_report(dir / "r.json", make_report());
  CHECK(trainmeter::test::schema_errors(dir / "r.json") == "");
}

// The charts' data, worked out from the fixture: plot area x 70..740, y 200 (0) .. 20 (top).
// Steps {2 (warm-up), 1, 1.5, 1, 2} ms at indices 0..4; the step chart's top is 2 ms, so index i
// sits at x = 70 + 167.5 i and a wall of w ms at y = 200 - 90 w.
TEST_CASE("HTML charts: the plotted data of steps, histogram, memory and energy",
          "[export][html]") {
  const std::string html = d::html_page(make_report());
  // Step times: the four counted steps; the warm-up step drawn apart, named with its time.
  CHECK_THAT(html, Catch::Contains("class=\"steps\" fill=\"none\" stroke=\"#1f77b4\" "
                                   "stroke-width=\"1\" points=\"237.5,110.0 405.0,65.0 572.5,110.0 "
                                   "740.0,20.0 \""));
  CHECK_THAT(html, Catch::Contains("cx=\"70.0\" cy=\"20.0\" r=\"3.5\" fill=\"#ff7f0e\"><title>"
                                   "warm-up step 0: 2 ms</title>"));
  CHECK_THAT(html, Catch::Contains("warm-up (1 step, excluded from statistics)"));
  // Histogram of {1, 1.5, 1, 2} ms on a log axis: 4 bins from 1 to 2 ms with edges 2^(k/4)
  // (1.189, 1.414, 1.682) holding 2, 0, 1, 1 steps (2 ms, the maximum, falls in the last bin);
  // bars 167.5 wide, the tallest 180 high.
  CHECK_THAT(html, Catch::Contains("x=\"70.5\" y=\"20.0\" width=\"166.5\" height=\"180.0\" "
                                   "fill=\"#2ca02c\"><title>1-1.189 ms: 2 steps</title>"));
  CHECK_THAT(html, Catch::Contains("<title>1.189-1.414 ms: 0 steps</title>"));
  CHECK_THAT(html, Catch::Contains("y=\"110.0\" width=\"166.5\" height=\"90.0\" fill=\"#2ca02c\">"
                                   "<title>1.414-1.682 ms: 1 steps</title>"));
  CHECK_THAT(html, Catch::Contains("<title>1.682-2 ms: 1 steps</title>"));
  // Memory: RSS 1, 2, 1.5 MB at 0, 0.1, 0.2 s; top 2 MB.
  CHECK_THAT(html,
             Catch::Contains("class=\"rss\" fill=\"none\" stroke=\"#9467bd\" "
                             "stroke-width=\"1.5\" points=\"70.0,110.0 405.0,20.0 740.0,65.0 \""));
  // Energy bars from x 150, 470 wide for the largest (cpu, 1 kWh): dram 0.2 kWh 94 wide, gpu:0
  // 0.5 kWh 235 wide; each labelled with its provenance and source.
  CHECK_THAT(html, Catch::Contains("width=\"470.0\" height=\"30.0\" fill=\"#d62728\"><title>"
                                   "measured, rapl</title>"));
  CHECK_THAT(html, Catch::Contains("width=\"94.0\" height=\"30.0\" fill=\"#d62728\"><title>"
                                   "measured, rapl</title>"));
  CHECK_THAT(html, Catch::Contains("width=\"235.0\" height=\"30.0\" fill=\"#d62728\"><title>"
                                   "measured, nvml</title>"));
  // Adaptive units (src/report/units.hpp): 3.6e6 J, 7.2e5 J, 1.8e6 J.
  CHECK_THAT(html, Catch::Contains(">1.00 kWh</text>") && Catch::Contains(">200 Wh</text>") &&
                       Catch::Contains(">500 Wh</text>"));
}

// summary's energy, carbon, cost and diagnostics lines, from the fixture's known figures.
TEST_CASE("summary: energy, carbon, cost and diagnostics lines", "[export][summary]") {
  json report = make_report();
  report["cost"] = {{"total", 12.5}, {"currency", "EUR"}};
  const std::string text = d::render_summary(report);
  INFO(text);
  // 3.6e6 + 7.2e5 + 1.8e6 J = 6.12e6 J = 1.7 kWh; adaptive units (src/report/units.hpp).
  CHECK_THAT(text, Catch::Contains("energy   1.70 kWh; cpu 1.00 kWh (measured, rapl); dram "
                                   "200 Wh (measured, rapl); gpu:0 500 Wh (measured, nvml)\n"));
  CHECK_THAT(text, Catch::Contains("carbon   570 g CO2e at 56 g/kWh (country)\n"));
  CHECK_THAT(text, Catch::Contains("cost     12.5000 EUR\n"));
  CHECK_THAT(text, Catch::Contains("diagnostics (1):\n  test <src> unavailable x2: a \"quoted\" "
                                   "<message> & more\n"));
  report["energy"] = nullptr;
  report["carbon"] = nullptr;
  report["cost"] = nullptr;
  report["diagnostics"] = json::array();
  const std::string bare = d::render_summary(report);
  CHECK_THAT(bare, Catch::Contains("energy   not measured\n"));
  CHECK(bare.find("carbon") == std::string::npos);
  CHECK(bare.find("cost") == std::string::npos);
  CHECK(bare.find("diagnostics") == std::string::npos);
}

TEST_CASE("export without steps: the sections alone give the same csv and prom text",
          "[export][sections]") {
  TempDir dir;
  const std::string path = dir / "run.json";
  const json report = make_report();
  trainmeter::test::write_report(path, report);
  std::size_t skipped = 0;
  const auto sections = trainmeter::detail::load_report_sections(path, &skipped);
  REQUIRE(sections.value);
  CHECK(skipped == report["steps"].size());
  CHECK(skipped == 5);
  CHECK((*sections.value)["steps"] == json::array());
  json without = report;
  without["steps"] = json::array();
  CHECK(*sections.value == without);
  for (const auto& f : trainmeter::detail::kExportFormats)
    if (!f.needs_steps)
      CHECK(d::export_text(*sections.value, std::string(f.name)) ==
            d::export_text(report, std::string(f.name)));
  // The CLI takes that path for csv and prom: the same text as from the whole report.
  const auto cli = trainmeter::test::run_cli("export '" + path + "' -f prom -o -");
  CHECK(cli.exit_code == 0);
  CHECK(cli.output == d::export_text(report, "prom"));
  // Truncated: the error names the file and the byte.
  const std::string text = trainmeter::test::read_file(path);
  trainmeter::test::write_file(dir / "cut.json", text.substr(0, text.size() / 2));
  const auto cut = trainmeter::detail::load_report_sections(dir / "cut.json");
  CHECK_FALSE(cut.value);
  CHECK(cut.error.find("cut.json: byte ") != std::string::npos);
}
