// The HTML page's sections (issue 18 section 2): findings first, each phase in its colour, the
// loss curve, the log-axis histogram's percentiles, "estimated" beside estimated figures, model,
// cost, config, command line, ranks, and "none" for empty diagnostics.
#include <string>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "export/exports.hpp"
#include "export/report_fixture.hpp"

namespace d = trainmeter::detail;
using nlohmann::json;
using trainmeter::test::make_report;

TEST_CASE("HTML page: findings come first", "[export][html]") {
  json r = make_report();
  r["phases"]["train"]["between_steps"] = {{"count", 3},           {"total_ns", 3e6},
                                           {"share_of_wall", 0.3}, {"p50_ns", 1e6},
                                           {"p90_ns", 1e6},        {"max_ns", 1e6}};
  const std::string html = d::html_page(r);
  const auto findings = html.find("<section id=\"findings\">");
  REQUIRE(findings != std::string::npos);
  CHECK(findings < html.find("<section id=\"run\">"));
  CHECK_THAT(html, Catch::Contains("<b>[high] input_bound</b>"));
  CHECK_THAT(html, Catch::Contains("<tr><th>phases.train.between_steps.share_of_wall</th><td>30.0 "
                                   "%</td></tr>"));
  // No evidence of anything: the section says none.
  json quiet = make_report();
  quiet["findings"] = {{"items", json::array()}, {"not_checked", json::array()}};
  CHECK_THAT(d::html_page(quiet), Catch::Contains("<p>none: no rule found evidence"));
}

TEST_CASE("HTML page: phases in their colours, loss curve, percentiles", "[export][html]") {
  json r = make_report();
  // An eval phase after the train steps (indices 5, 6), 4 ms each.
  r["phases"]["eval"] = r["phases"]["train"];
  for (int i = 5; i < 7; ++i)
    r["steps"].push_back({{"index", i},
                          {"phase", "eval"},
                          {"start_offset_ns", 1e7 + i},
                          {"wall_ns", 4000000},
                          {"samples", 1},
                          {"tokens", 0},
                          {"warmup", false},
                          {"loss", 0.5}});
  const std::string html = d::html_page(r);
  // phases iterate in key order: eval first (#1f77b4), train second (#8c564b). x: index 0..6 over
  // 70..740 (111.667 per step); y: 0..4 ms over 200..20 (45 per ms).
  CHECK_THAT(html, Catch::Contains("stroke=\"#1f77b4\" stroke-width=\"1\" points=\"628.3,20.0 "
                                   "740.0,20.0 \""));
  CHECK_THAT(html, Catch::Contains("stroke=\"#8c564b\" stroke-width=\"1\" points=\"181.7,155.0 "
                                   "293.3,132.5 405.0,155.0 516.7,110.0 \""));
  CHECK_THAT(html, Catch::Contains(">eval</text>") && Catch::Contains(">train</text>"));
  CHECK_THAT(html, Catch::Contains("id=\"chart-loss\""));
  // Three percentile markers on the histogram (p50, p90, p99 of the main phase).
  std::size_t markers = 0;
  for (auto at = html.find("class=\"percentile\""); at != std::string::npos;
       at = html.find("class=\"percentile\"", at + 1))
    ++markers;
  CHECK(markers == 3);
}

TEST_CASE("HTML page: estimated figures, model, cost, config, command line, diagnostics",
          "[export][html]") {
  json r = make_report();
  r["energy"]["components"][0]["provenance"] = "estimated";
  r["diagnostics"] = json::array();
  r["cost"] = {{"compute", 2.0},    {"energy", 0.5},  {"total", 2.5},
               {"currency", "EUR"}, {"formula", "f"}, {"inputs", json::object()}};
  r["model"] = {{"name", "mlp"},
                {"parameters", 10},
                {"trainable_parameters", 10},
                {"parameter_bytes", 40},
                {"buffer_bytes", 0},
                {"bytes_by_dtype", {{"float32", 40}}},
                {"optimizer_state_bytes_estimate", {{"adam", 80}, {"sgd_momentum", 40}}}};
  const std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains(">1.00 kWh (estimated)</text>"));
  CHECK_THAT(html, Catch::Contains("(estimated: some components are estimates)"));
  CHECK_THAT(html, Catch::Contains("<tr><th>Adam state</th><td>80 B (estimated)</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<tr><th>total</th><td>2.5 EUR</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<tr><th>pue</th><td>1.5</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<tr><th>command line</th><td>train</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<tr><td colspan=\"4\">none</td></tr>"));
}

TEST_CASE("HTML page: a merged report's ranks", "[export][html]") {
  json r = make_report();
  CHECK(d::html_page(r).find("id=\"ranks\"") == std::string::npos);
  r["ranks"] = {{"straggler_rank", 1},
                {"per_rank",
                 {{{"rank", 0},
                   {"hostname", "a"},
                   {"status", "completed"},
                   {"duration_s", 2.0},
                   {"steps_recorded", 5},
                   {"slowest_steps", 1},
                   {"energy_j", 3600.0},
                   {"co2e_kg", 0.0123}},
                  {{"rank", 1},
                   {"hostname", "b"},
                   {"status", "completed"},
                   {"duration_s", 2.5},
                   {"steps_recorded", 5},
                   {"slowest_steps", 4},
                   {"energy_j", nullptr},
                   {"co2e_kg", nullptr}}}}};
  const std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains("<tr><td>0</td><td>a</td><td>completed</td><td>2.00 s</td>"
                                   "<td>5</td><td>n/a</td><td>n/a</td><td>n/a</td><td>1</td>"
                                   "<td>1.00 Wh</td><td>12.3 g CO2e</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<td>n/a</td><td>n/a</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<p>straggler: rank 1</p>"));
}

// Energy and power over time from energy.timeline's rows (cumulative joules per component).
// Plot area x 70..740, y 200 (0) .. 20 (top).
TEST_CASE("HTML page: energy and power over time per component", "[export][html]") {
  json r = make_report();
  // Without rows: said, not drawn as zeros.
  std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains("id=\"chart-power\"") &&
                       Catch::Contains(">energy over time not measured</text>"));
  r["energy"]["components"][2]["provenance"] = "estimated";  // gpu:0
  // cpu: 0, 100, 300 J and gpu:0: 0, 50, 50 J at 0, 1, 2 s; dram has no column.
  r["energy"]["timeline"] = {{"points", 3},
                             {"decimations", 0},
                             {"max_points", 100},
                             {"columns", {"t_offset_ns", "cpu", "gpu:0"}},
                             {"rows", {{0, 0.0, 0.0}, {1e9, 100.0, 50.0}, {2e9, 300.0, 50.0}}}};
  html = d::html_page(r);
  // Power: cpu 100 W then 200 W, gpu 50 W then 0 W, as steps; top 200 W (45 px per 50 W);
  // x 0..2 s, 335 px per second.
  auto line = [](const char* cls, const char* colour, const char* points) {
    return fmt::format(
        "class=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"", cls, colour,
        points);
  };
  CHECK_THAT(html, Catch::Contains(line("power-line", "#b5179e",
                                        "70.0,110.0 405.0,110.0 405.0,20.0 740.0,20.0 ")));
  CHECK_THAT(html, Catch::Contains(line("power-line", "#2a9d8f",
                                        "70.0,155.0 405.0,155.0 405.0,200.0 740.0,200.0 ")));
  // Cumulative energy: top 300 J (0.6 px per J).
  CHECK_THAT(html,
             Catch::Contains(line("energy-line", "#b5179e", "70.0,200.0 405.0,140.0 740.0,20.0 ")));
  CHECK_THAT(
      html, Catch::Contains(line("energy-line", "#2a9d8f", "70.0,200.0 405.0,170.0 740.0,170.0 ")));
  CHECK_THAT(html, Catch::Contains(">gpu:0 (estimated)</text>"));
  CHECK_THAT(html, Catch::Contains(">dram over time: not measured</text>"));
  // No energy at all.
  r["energy"] = nullptr;
  CHECK_THAT(d::html_page(r), Catch::Contains(">energy not measured</text>"));
  // A recovered report: the total only.
  r["energy"] = {{"recovered_timeline",
                  {{"columns", {"t_offset_ns", "total_j"}}, {"rows", {{0, 0.0}, {1e9, 10.0}}}}}};
  CHECK_THAT(d::html_page(r), Catch::Contains("class=\"power-line\" fill=\"none\" "
                                              "stroke=\"#b5179e\" stroke-width=\"1.5\" "
                                              "points=\"70.0,20.0 740.0,20.0 \""));
}

// Memory over time: RSS (memory.timeline), per-step peak tensor bytes and CUDA tensor bytes.
TEST_CASE("HTML page: memory over time, RSS, tensors and CUDA", "[export][html]") {
  json r = make_report();
  // The fixture's steps end at 2, 3, 4.5, 5.5 and 7.5 ms with 1000..1004 tensor bytes; RSS 1, 2,
  // 1.5 MB at 0, 0.1, 0.2 s: x 3350 px per second, y 90 px per MB.
  r["steps"][3]["peak_cuda_tensor_bytes"] = {{"cuda:0", 1000000}};
  r["steps"][4]["peak_cuda_tensor_bytes"] = {{"cuda:0", 1500000}};
  std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains("class=\"tensors\" fill=\"none\" stroke=\"#e9a400\" "
                                   "stroke-width=\"1.5\" points=\"76.7,199.9 "));
  CHECK_THAT(html, Catch::Contains("class=\"cuda\" fill=\"none\" stroke=\"#118ab2\" "
                                   "stroke-width=\"1.5\" points=\"88.4,110.0 95.1,65.0 \""));
  CHECK_THAT(html, Catch::Contains(">tensors (cuda:0) per-step peak</text>"));
  // No CUDA bytes on a machine with a GPU: not measured. No timeline and no tensor bytes: RSS
  // and tensors not measured either, nothing drawn.
  r = make_report();
  CHECK_THAT(d::html_page(r), Catch::Contains(">tensors (CUDA): not measured</text>"));
  r["memory"]["timeline"] = nullptr;
  for (auto& s : r["steps"]) s["peak_tensor_bytes"] = nullptr;
  CHECK_THAT(d::html_page(r), Catch::Contains(">memory over time not measured</text>"));
  r["memory"]["timeline"] = {{"interval_ms", 100},
                             {"samples", 1},
                             {"dropped", 0},
                             {"points", {{0, 1000000}, {100000000, 2000000}}}};
  html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains(">tensors (CPU): not measured</text>"));
  CHECK(html.find("class=\"tensors\"") == std::string::npos);
}

// Throughput over time: samples over the elapsed time of each window of non-warm-up steps.
TEST_CASE("HTML page: throughput over time per phase", "[export][html]") {
  json r = make_report();
  // Non-warm-up steps (start, end) in ms: (2, 3), (3, 4.5), (4.5, 5.5), (5.5, 7.5), 4 samples
  // each: 4000, 2666.7, 4000, 2000 samples/s at 3, 4.5, 5.5, 7.5 ms. x 3 .. 7.5 ms over 70..740;
  // y top 4000 (0.045 px per sample/s).
  const std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains("class=\"throughput\" fill=\"none\" stroke=\"#1f77b4\" "
                                   "stroke-width=\"1.5\" points=\"70.0,20.0 293.3,80.0 442.2,20.0 "
                                   "740.0,110.0 \""));
  CHECK_THAT(html, Catch::Contains("Throughput over the run (samples/s, warm-up excluded)"));
  // No samples counted: steps per second.
  for (auto& s : r["steps"]) s["samples"] = 0;
  CHECK_THAT(d::html_page(r), Catch::Contains("Throughput over the run (steps/s"));
}

// The cost what-if is shown as the other findings are.
TEST_CASE("HTML page: the cost what-if finding", "[export][html]") {
  json r = make_report();
  r["cost"] = trainmeter::test::energy_cost_section("USD", 0.20, 10.0);
  const std::string html = d::html_page(r);
  CHECK_THAT(html, Catch::Contains("] cost_region</b>"));
  CHECK_THAT(html, Catch::Contains("<tr><th>cost.inputs.energy_price_per_kwh</th><td>0.2 "
                                   "USD/kWh</td></tr>"));
}
