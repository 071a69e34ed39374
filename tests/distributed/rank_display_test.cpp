// The ranks of a merged report in `summary` (text and JSON), the HTML page and the Prometheus
// export: each rank's own step time, the straggler table and energy per host, from a merged
// report whose figures are literals.
#include <catch2/catch.hpp>

#include "export/exports.hpp"
#include "report/summary.hpp"

namespace {

using nlohmann::json;

json rank(int r, const char* host, double p50, double mean, double max, int slowest, double e) {
  return {{"rank", r},
          {"hostname", host},
          {"status", "completed"},
          {"duration_s", 2.0},
          {"steps_recorded", 10},
          {"slowest_steps", slowest},
          {"phases",
           {{"train",
             {{"steps", 10}, {"step_time_ns", {{"p50", p50}, {"mean", mean}, {"max", max}}}}}}},
          {"energy_j", e},
          {"co2e_kg", nullptr}};
}

json merged() {
  return {{"run", {{"name", "dist"}, {"id", "r1"}, {"rank", 0}, {"world_size", 3}}},
          {"phases", {{"eval", {{"steps", 2}}}, {"train", {{"steps", 10}, {"warmup_steps", 1}}}}},
          {"energy",
           {{"total_j", 60.0},
            {"per_host",
             {{"host-a", {{"ranks", {0, 1}}, {"energy_j", 40.0}, {"machine_energy_j", 240.0}}},
              {"host-b", {{"ranks", {2}}, {"energy_j", 20.0}, {"machine_energy_j", nullptr}}}}}}},
          {"ranks",
           {{"world_size", 3},
            {"compared_steps", 8},
            {"slowest_rank_counts", {{"0", 1}, {"2", 6}, {"1", 1}}},
            {"straggler_rank", 2},
            {"per_rank",
             {rank(0, "host-a", 10e6, 11e6, 20e6, 1, 15.0),
              rank(1, "host-a", 12e6, 12e6, 13e6, 1, 25.0),
              rank(2, "host-b", 30e6, 31e6, 45e6, 6, 20.0)}}}}};
}

}  // namespace

TEST_CASE("ranks_view: per-rank step time, stragglers most often slowest first, host energy",
          "[merge][summary]") {
  const json v = trainmeter::detail::ranks_view(merged());
  CHECK(v["phase"] == "train");
  REQUIRE(v["per_rank"].size() == 3);
  CHECK(v["per_rank"][2] == json({{"rank", 2},
                                  {"hostname", "host-b"},
                                  {"p50_ns", 30e6},
                                  {"mean_ns", 31e6},
                                  {"max_ns", 45e6},
                                  {"slowest_steps", 6},
                                  {"energy_j", 20.0}}));
  CHECK(v["stragglers"] == json::parse(R"([{"rank":2,"slowest_steps":6,"share":0.75},
      {"rank":0,"slowest_steps":1,"share":0.125},{"rank":1,"slowest_steps":1,"share":0.125}])"));
  CHECK(v["per_host"][0] == json({{"host", "host-a"},
                                  {"ranks", {0, 1}},
                                  {"energy_j", 40.0},
                                  {"machine_energy_j", 240.0}}));
  CHECK(v["per_host"][1]["machine_energy_j"].is_null());
  // A single rank's report has no ranks view.
  CHECK(trainmeter::detail::ranks_view(json{{"run", {{"rank", 0}}}}).is_null());
  CHECK(trainmeter::detail::summary_json(merged())["ranks"] == v);
}

TEST_CASE("summary text shows each rank, the stragglers and energy per host", "[merge][summary]") {
  const std::string s = trainmeter::detail::render_summary(merged());
  INFO(s);
  CHECK(s.find("ranks    train step time per rank") != std::string::npos);
  CHECK(s.find("rank    2 host-b           p50 30.0 ms  mean 31.0 ms  max 45.0 ms; slowest in 6 "
               "step(s); 20.0 J") != std::string::npos);
  CHECK(s.find("rank    2 slowest in 6 step(s) (75%)") != std::string::npos);
  CHECK(
      s.find("host energy host-a: ranks [0,1]; attributed 40.0 J, machine 240 J (counted once)") !=
      std::string::npos);
  CHECK(s.find("host energy host-b: ranks [2]; attributed 20.0 J, machine n/a") !=
        std::string::npos);
}

TEST_CASE("HTML page: per-rank step time, straggler table, host energy", "[merge][html]") {
  const std::string h = trainmeter::detail::html_page(merged());
  CHECK(h.find("<th>train step p50</th>") != std::string::npos);
  CHECK(h.find("<td>30.0 ms</td><td>31.0 ms</td><td>45.0 ms</td><td>6</td>") != std::string::npos);
  CHECK(h.find("<table id=\"stragglers\">") != std::string::npos);
  CHECK(h.find("<tr><td>2</td><td>6</td><td>75%</td></tr>") != std::string::npos);
  CHECK(h.find("<tr><td>host-a</td><td>[0,1]</td><td>40.0 J</td><td>240 J</td></tr>") !=
        std::string::npos);
}

TEST_CASE("Prometheus export: per-rank step time, straggler counts, host energy", "[merge][prom]") {
  const std::string p = trainmeter::detail::prometheus_text(merged());
  INFO(p);
  const std::string base = "run=\"dist\",run_id=\"r1\",rank=\"0\"";
  CHECK(p.find("trainmeter_rank_step_time_seconds{" + base +
               ",of_rank=\"0\",host=\"host-a\",phase=\"train\",stat=\"p50\"} 0.01\n") !=
        std::string::npos);
  CHECK(p.find("trainmeter_rank_slowest_steps{" + base + ",of_rank=\"2\"} 6\n") !=
        std::string::npos);
  CHECK(p.find("trainmeter_host_energy_joules_total{" + base +
               ",host=\"host-a\",kind=\"machine_energy_j\"} 240\n") != std::string::npos);
  // Not measured is left out, never 0.
  CHECK(p.find("host=\"host-b\",kind=\"machine_energy_j\"") == std::string::npos);
}
