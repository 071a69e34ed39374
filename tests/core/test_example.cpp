// The main job (build/bin/train_mlp) against the program's own counts and an external clock.
#include <catch2/catch.hpp>

#include <algorithm>

#include "report/stats.hpp"
#include "support/test_support.hpp"

using trainmeter::test::TempDir;

TEST_CASE("train_mlp's report matches what the program did", "[example]") {
  TempDir dir;
  const std::string report = dir / "mlp.json", own = dir / "own.json";
  const auto r = trainmeter::test::run_command(std::string("'") + TRAINMETER_TRAIN_MLP +
                                               "' --steps 120 --batch 32 --hidden 64 --eval-every 10 --out '" +
                                               report + "' --own-timings '" + own + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("p50") && Catch::Contains("report"));
  CHECK(trainmeter::test::schema_errors(report) == "");
  const auto doc = trainmeter::test::read_json(report);
  const auto mine = trainmeter::test::read_json(own);
  CHECK(doc["phases"]["train"]["steps"] == mine["train_steps"]);
  CHECK(doc["phases"]["eval"]["steps"] == mine["eval_steps"]);
  CHECK(mine["eval_steps"] == 12);

  // Each step as trainmeter saw it lies within the program's own measurement around it, and the
  // percentiles agree with those of the outside clock to within the scope's own cost.
  std::vector<double> inside, outside;
  std::size_t train_i = 0;
  for (const auto& s : doc["steps"]) {
    if (s["phase"] != "train") continue;
    const double out_ns = mine["train_ns"][train_i++].get<double>();
    CHECK(s["wall_ns"].get<double>() <= out_ns);
    if (!s["warmup"].get<bool>()) {
      inside.push_back(s["wall_ns"].get<double>());
      outside.push_back(out_ns);
    }
  }
  REQUIRE(train_i == 120);
  std::sort(inside.begin(), inside.end());
  std::sort(outside.begin(), outside.end());
  const double p50_in = trainmeter::detail::exact_quantile_sorted(inside, 0.5);
  const double p50_out = trainmeter::detail::exact_quantile_sorted(outside, 0.5);
  CHECK(doc["phases"]["train"]["step_time_ns"]["p50"].get<double>() == Approx(std::round(p50_in)).margin(1));
  CHECK(p50_in <= p50_out);
  CHECK(p50_in >= 0.9 * p50_out);  // the gap is the loop's own bookkeeping, not the step
}
