// The main job (build/bin/train_mlp) against the program's own counts and an external clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "support/test_support.hpp"

using trainmeter::test::TempDir;

TEST_CASE("train_mlp's report matches what the program did", "[example]") {
  TempDir dir;
  const std::string report = dir / "mlp.json", own = dir / "own.json";
  const auto r =
      trainmeter::test::run_command(std::string("'") + TRAINMETER_TRAIN_MLP +
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

  // Each step as trainmeter saw it lies within the program's own measurement around it.
  std::vector<double> inside, outside;
  std::size_t train_i = 0, mostly_inside = 0;
  for (const auto& s : doc["steps"]) {
    if (s["phase"] != "train") continue;
    const double out_ns = mine["train_ns"][train_i++].get<double>();
    CHECK(s["wall_ns"].get<double>() <= out_ns);
    if (!s["warmup"].get<bool>()) {
      inside.push_back(s["wall_ns"].get<double>());
      outside.push_back(out_ns);
      if (s["wall_ns"].get<double>() >= 0.5 * out_ns) ++mostly_inside;
    }
  }
  REQUIRE(train_i == 120);
  REQUIRE(inside.size() == 118);  // train_mlp's two warm-up steps left out
  std::sort(inside.begin(), inside.end());
  std::sort(outside.begin(), outside.end());
  // The median of 118 values is the mean of the 59th and 60th smallest (indices 58 and 59),
  // rounded to whole ns as the report writes it; worked out here, not by the code under test.
  CHECK(doc["phases"]["train"]["step_time_ns"]["p50"].get<std::int64_t>() ==
        std::llround((inside[58] + inside[59]) / 2));
  CHECK(doc["phases"]["train"]["step_time_ns"]["min"].get<double>() == inside.front());
  CHECK(doc["phases"]["train"]["step_time_ns"]["max"].get<double>() == inside.back());
  // Each inside value is at most its outside one, so the sorted sequences are too: exact.
  CHECK(inside[59] <= outside[59]);
  // The gap is the loop's own bookkeeping, not the step: in most steps (a majority, so one
  // preempted step on a loaded machine cannot fail it) the scope holds over half the time.
  CHECK(mostly_inside > inside.size() / 2);
}
