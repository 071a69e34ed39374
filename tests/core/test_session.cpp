#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include <trainmeter/trainmeter.hpp>

#include "report/stats.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;

namespace {

trainmeter::Config quiet_config(const TempDir& dir, const std::string& name = "t") {
  trainmeter::Config c;
  c.run_name = name;
  c.output = dir / (name + ".json");
  c.warmup_steps = 0;
  c.sample_interval_ms = 20;
  return c;
}

void spin_for(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

TEST_CASE("a session records every step with its phase, samples, loss and metrics", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.warmup_steps = 2;
  trainmeter::Session session(cfg);
  const auto acc = session.metric("accuracy");
  for (int i = 0; i < 10; ++i) {
    auto step = session.step(32);
    step.set_loss(1.0 / (i + 1));
    step.set_metric(acc, 0.5 + i * 0.01);
    step.set_tokens(100);
  }
  for (int i = 0; i < 3; ++i) auto s = session.step(8, "eval");
  const auto report = session.finish();
  REQUIRE(report.written);
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(trainmeter::test::schema_errors(report.path) == "");

  const auto& train = doc["phases"]["train"];
  CHECK(train["steps"] == 10);
  CHECK(train["warmup_steps"] == 2);
  CHECK(train["samples"] == 8 * 32);  // warm-up excluded
  CHECK(train["tokens"] == 8 * 100);
  CHECK(train["loss"]["first"].get<double>() == Approx(1.0 / 3));
  CHECK(train["loss"]["last"].get<double>() == Approx(0.1));
  CHECK(doc["phases"]["eval"]["steps"] == 3);
  CHECK(doc["phases"]["eval"]["warmup_steps"] == 2);

  const auto& steps = doc["steps"];
  REQUIRE(steps.size() == 13);
  CHECK(steps[0]["warmup"] == true);
  CHECK(steps[2]["warmup"] == false);
  CHECK(steps[3]["metrics"]["accuracy"].get<double>() == Approx(0.53));
  CHECK(steps[12]["phase"] == "eval");
  CHECK(steps[12]["loss"].is_null());             // not set: null, never 0
  CHECK(steps[12]["metrics"]["accuracy"].is_null());
  CHECK(steps[0]["cpu_ns"].is_null());            // step_cpu_time off: not measured
  for (std::size_t i = 0; i < steps.size(); ++i) CHECK(steps[i]["index"] == i);
  CHECK(doc["run"]["status"] == "completed");
  CHECK(doc["run"]["steps_recorded"] == 13);
  CHECK(doc["memory"].is_object() == doc.contains("memory"));
  CHECK(report.phase("train")->samples == 8 * 32);
}

TEST_CASE("statistics equal those computed independently from the retained steps", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.warmup_steps = 3;
  cfg.step_cpu_time = true;
  trainmeter::Session session(cfg);
  for (int i = 0; i < 60; ++i) {
    auto step = session.step(4);
    spin_for(std::chrono::microseconds(50 + (i % 7) * 40));
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  std::vector<double> wall;
  for (const auto& s : doc["steps"])
    if (!s["warmup"].get<bool>()) wall.push_back(s["wall_ns"].get<double>());
  REQUIRE(wall.size() == 57);
  std::sort(wall.begin(), wall.end());
  const auto& st = doc["phases"]["train"]["step_time_ns"];
  CHECK(st["percentiles_exact"] == true);
  CHECK(st["min"].get<double>() == wall.front());
  CHECK(st["max"].get<double>() == wall.back());
  for (auto [key, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}})
    CHECK(st[key].get<double>() == Approx(std::round(trainmeter::detail::exact_quantile_sorted(wall, q))).margin(1));
  double sum = 0;
  for (double w : wall) sum += w;
  CHECK(st["mean"].get<double>() == Approx(sum / 57));
  CHECK(doc["phases"]["train"]["duration_s"].get<double>() == Approx(sum * 1e-9));
  CHECK(doc["phases"]["train"]["samples_per_s"].get<double>() == Approx(57 * 4 / (sum * 1e-9)));
  // Spinning is CPU-bound: the thread's CPU time is most of the wall time.
  for (const auto& s : doc["steps"]) {
    REQUIRE(s["cpu_ns"].is_number_integer());
    CHECK(s["cpu_ns"].get<double>() <= s["wall_ns"].get<double>() * 1.05 + 20000);
  }
  CHECK(doc["phases"]["train"]["cpu_time_ns"]["p50"].get<double>() > 0.5 * st["p50"].get<double>());
}

TEST_CASE("past max_retained_steps memory stops growing and percentiles come from the sketch",
          "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.max_retained_steps = 100;
  trainmeter::Session session(cfg);
  for (int i = 0; i < 5000; ++i) auto step = session.step(1);
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["steps"].size() == 100);
  CHECK(doc["phases"]["train"]["steps"] == 5000);
  CHECK(doc["run"]["steps_retained"] == 100);
  const auto& st = doc["phases"]["train"]["step_time_ns"];
  CHECK(st["percentiles_exact"] == false);
  CHECK(st["percentile_relative_error"].get<double>() <= 0.01);
  CHECK(st["min"].get<double>() <= st["p50"].get<double>());
  CHECK(st["p50"].get<double>() <= st["p99"].get<double>());
  CHECK(st["p99"].get<double>() <= st["max"].get<double>());
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}

TEST_CASE("steps from eight threads are all counted exactly once", "[session][threads]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  constexpr int kThreads = 8, kSteps = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&session, t] {
      const auto ph = session.phase(t % 2 == 0 ? "even" : "odd");
      for (int i = 0; i < kSteps; ++i) auto s = session.step(1, ph);
    });
  for (auto& t : threads) t.join();
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  const auto even = doc["phases"]["even"]["steps"].get<std::uint64_t>();
  const auto odd = doc["phases"]["odd"]["steps"].get<std::uint64_t>();
  CHECK(even + odd + report.steps_dropped == std::uint64_t(kThreads) * kSteps);
  CHECK(report.steps_recorded + report.steps_dropped == std::uint64_t(kThreads) * kSteps);
}

TEST_CASE("finish() from another thread while eight threads record loses nothing unaccounted",
          "[session][threads]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  std::atomic<bool> go{true};
  std::atomic<std::uint64_t> active_scopes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      std::uint64_t mine = 0;
      while (go.load()) {
        auto s = session.step(1);
        if (s.active()) ++mine;
      }
      active_scopes += mine;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto report = session.finish();
  go = false;
  for (auto& t : threads) t.join();
  CHECK(report.steps_recorded > 0);
  CHECK(report.steps_recorded + report.steps_dropped == active_scopes.load());
}

TEST_CASE("a disabled session is a no-op and writes nothing", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.enabled = false;
  trainmeter::Session session(cfg);
  CHECK_FALSE(session.enabled());
  {
    auto s = session.step(10);
    CHECK_FALSE(s.active());
  }
  const auto report = session.finish();
  CHECK_FALSE(report.written);
  CHECK(report.steps_recorded == 0);
  CHECK_FALSE(trainmeter::test::run_command("test -e '" + cfg.output + "'").exit_code == 0);
}

TEST_CASE("finish is idempotent, steps after it are ignored, the destructor finishes", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  {
    trainmeter::Session session(cfg);
    { auto s = session.step(1); }
    const auto a = session.finish();
    { auto late = session.step(1); CHECK_FALSE(late.active()); }
    const auto b = session.finish();
    CHECK(a.json == b.json);
    CHECK(b.steps_recorded == 1);
  }
  auto cfg2 = quiet_config(dir, "destroyed");
  {
    trainmeter::Session session(cfg2);
    auto s = session.step(1);
    s.stop();
  }
  const json doc = trainmeter::test::read_json(cfg2.output);
  CHECK(doc["phases"]["train"]["steps"] == 1);
}

TEST_CASE("abort() marks the run aborted; the report is still written", "[session]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  { auto s = session.step(1); }
  session.abort();
  const auto report = session.finish();
  CHECK(report.status == "aborted");
  CHECK(trainmeter::test::read_json(report.path)["run"]["status"] == "aborted");
}

TEST_CASE("step wall time agrees with an external clock around the scope", "[session]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  std::vector<std::int64_t> outside;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      auto s = session.step(1);
      spin_for(std::chrono::microseconds(300));
    }
    outside.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  }
  const json doc = trainmeter::test::read_json(session.finish().path);
  for (int i = 0; i < 20; ++i) {
    const auto inside = doc["steps"][i]["wall_ns"].get<std::int64_t>();
    CHECK(inside >= 300000);
    CHECK(inside <= outside[i]);  // the scope lies inside the outer measurement
  }
}

TEST_CASE("names with quotes, backslashes, newlines and non-ASCII survive the report", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.run_name = "run \"quoted\" \\ back\nslash ünïcødé";
  cfg.output = dir / "odd.json";
  cfg.tags = {{"k\"ey", "va\\lue\n2"}, {"bad-utf8", std::string("\xff\xfe", 2)}};
  trainmeter::Session session(cfg);
  { auto s = session.step(1, "phase \"x\"\t✓"); s.set_loss(std::nan("")); }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["run"]["name"] == cfg.run_name);
  CHECK(doc["run"]["tags"]["k\"ey"] == "va\\lue\n2");
  CHECK(doc["run"]["tags"]["bad-utf8"] == "\xEF\xBF\xBD\xEF\xBF\xBD");  // replaced, not corrupt
  CHECK(doc["phases"].contains("phase \"x\"\t✓"));
  CHECK(doc["steps"][0]["loss"].is_null());  // NaN becomes null
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}
