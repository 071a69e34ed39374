// The HTML page's sections (issue 18 section 2): findings first, each phase in its colour, the
// loss curve, the log-axis histogram's percentiles, "estimated" beside estimated figures, model,
// cost, config, command line, ranks, and "none" for empty diagnostics.
#include <string>

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
  CHECK_THAT(html,
             Catch::Contains("<tr><td>0</td><td>a</td><td>completed</td><td>2.00 s</td>"
                             "<td>5</td><td>n/a</td><td>n/a</td><td>n/a</td><td>1</td>"
                             "<td>1.00 Wh</td><td>12.3 g CO2e</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<td>n/a</td><td>n/a</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<p>straggler: rank 1</p>"));
}
