#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include <trainmeter/trainmeter.hpp>

#include "support/scripted_steps.hpp"
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
  CHECK(steps[12]["loss"].is_null());  // not set: null, never 0
  CHECK(steps[12]["metrics"]["accuracy"].is_null());
  CHECK(steps[0]["cpu_ns"].is_null());  // step_cpu_time off: not measured
  for (std::size_t i = 0; i < steps.size(); ++i) CHECK(steps[i]["index"] == i);
  CHECK(doc["run"]["status"] == "completed");
  CHECK(doc["run"]["steps_recorded"] == 13);
  CHECK(doc["memory"].is_object() == doc.contains("memory"));
  CHECK(report.phase("train")->samples == 8 * 32);
}

// A fake clock (support/scripted_steps.hpp) gives the steps known wall times, so every figure
// below is worked out by hand: 3 warm-up steps of 1 ms, then 20 steps of 1..20 us in a shuffled
// order. Percentiles interpolate linearly between closest ranks (docs/methodology.md): with n =
// 20 sorted values v[i] = 1000 (i + 1) ns, quantile q sits at position q * 19.
TEST_CASE("statistics equal hand-derived values for known step times", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.warmup_steps = 3;
  trainmeter::Session session(cfg);
  std::vector<std::int64_t> script = {1000000, 1000000, 1000000};  // warm-up, excluded
  for (int k : {7, 1, 20, 13, 2, 19, 8, 14, 3, 18, 9, 15, 4, 17, 10, 16, 5, 12, 6, 11})
    script.push_back(1000 * k);
  trainmeter::test::ScriptedWallTimes clock(session, script);
  REQUIRE(clock.installed());
  for (int i = 0; i < 23; ++i) auto step = session.step(4);
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  const auto& st = doc["phases"]["train"]["step_time_ns"];
  CHECK(doc["phases"]["train"]["steps"] == 23);  // warm-up included
  CHECK(doc["phases"]["train"]["warmup_steps"] == 3);
  CHECK(st["percentiles_exact"] == true);
  CHECK(st["min"] == 1000);
  CHECK(st["max"] == 20000);
  CHECK(st["p50"] == 10500);                         // position 9.5: 10000 + 0.5 * 1000
  CHECK(st["p90"] == 18100);                         // position 17.1: 18000 + 0.1 * 1000
  CHECK(st["p95"] == 19050);                         // position 18.05: 19000 + 0.05 * 1000
  CHECK(st["p99"] == 19810);                         // position 18.81: 19000 + 0.81 * 1000
  CHECK(st["mean"].get<double>() == Approx(10500));  // 210000 ns / 20
  // Sample stddev of 1..20 is sqrt(20 * 21 / 12) = sqrt(35) = 5.9160798; times 1000 ns.
  CHECK(st["stddev"].get<double>() == Approx(5916.0798).epsilon(1e-6));
  CHECK(doc["phases"]["train"]["duration_s"].get<double>() == Approx(210e-6));
  // 20 steps of 4 samples in 210 us: 80 / 210e-6 = 380952.38 samples/s.
  CHECK(doc["phases"]["train"]["samples_per_s"].get<double>() == Approx(380952.38).epsilon(1e-6));
  CHECK(doc["steps"][0]["wall_ns"] == 1000000);
  CHECK(doc["steps"][3]["wall_ns"] == 7000);
  CHECK(doc["steps"][22]["wall_ns"] == 11000);
}

// Each step spins until its thread has used 100 us of CPU time (the thread CPU clock, not the
// wall clock: preemption on a loaded machine stretches the wall time only), so each step's
// cpu_ns is at least 100 us and at most its wall time plus the CPU cost of the two thread-clock
// reads that lie outside the wall interval (a syscall each; 20 us covers sanitizer builds).
TEST_CASE("step CPU time: at least the CPU time burnt, at most the wall time", "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.step_cpu_time = true;
  trainmeter::Session session(cfg);
  for (int i = 0; i < 20; ++i) {
    auto step = session.step(1);
    const std::int64_t until = trainmeter::detail::thread_cpu_ns() + 100000;
    while (trainmeter::detail::thread_cpu_ns() < until) {
    }
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  REQUIRE(doc["steps"].size() == 20);
  for (const auto& s : doc["steps"]) {
    REQUIRE(s["cpu_ns"].is_number_integer());
    CHECK(s["cpu_ns"].get<std::int64_t>() >= 100000);
    CHECK(s["cpu_ns"].get<std::int64_t>() <= s["wall_ns"].get<std::int64_t>() + 20000);
  }
  CHECK(doc["phases"]["train"]["cpu_time_ns"]["min"].get<std::int64_t>() >= 100000);
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

// Each recording thread has its own ring of 16,384 slots; a step is dropped only when its ring
// holds 16,384 records the collector has not drained yet. So a thread that records at most
// 16,384 steps can never lose one, however slowly the collector runs, and one that records more
// loses at most the excess.
static_assert(trainmeter::detail::ThreadRing::kCapacity == 16384, "the bounds below assume it");

TEST_CASE("steps from eight threads are all counted exactly once, none dropped",
          "[session][threads]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  constexpr int kThreads = 8, kSteps = 16384;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&session, t] {
      const auto ph = session.phase(t % 2 == 0 ? "even" : "odd");
      for (int i = 0; i < kSteps; ++i) auto s = session.step(1, ph);
    });
  for (auto& t : threads) t.join();
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(report.steps_dropped == 0);
  CHECK(doc["phases"]["even"]["steps"] == 65536);  // 4 threads x 16,384
  CHECK(doc["phases"]["odd"]["steps"] == 65536);
  CHECK(report.steps_recorded == 131072);
}

TEST_CASE("a thread past its ring's capacity drops at most the excess, all counted",
          "[session][threads]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  constexpr std::uint64_t kSteps = 16384 + 50000;
  std::thread t([&] {
    for (std::uint64_t i = 0; i < kSteps; ++i) auto s = session.step(1);
  });
  t.join();
  const auto report = session.finish();
  CHECK(report.steps_dropped <= 50000);
  CHECK(report.steps_recorded >= 16384);
  CHECK(report.steps_recorded + report.steps_dropped == kSteps);
}

TEST_CASE("finish() from another thread while eight threads record loses nothing unaccounted",
          "[session][threads]") {
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  std::atomic<bool> go{true};
  std::atomic<int> started{0};
  std::vector<std::uint64_t> counts(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      std::uint64_t mine = 0;
      bool announced = false;
      while (go.load()) {
        auto s = session.step(1);
        if (s.active()) ++mine;
        if (!announced && mine >= 100) {
          announced = true;
          ++started;
        }
      }
      if (!announced) ++started;
      counts[t] = mine;
    });
  // finish() once every thread has recorded 100 steps (a count, not a sleep).
  while (started.load() < 8) std::this_thread::yield();
  const auto report = session.finish();
  go = false;
  for (auto& t : threads) t.join();
  std::uint64_t total = 0, min_recorded = 0, max_dropped = 0;
  for (std::uint64_t c : counts) {
    CHECK(c >= 100);
    total += c;
    min_recorded += std::min<std::uint64_t>(c, 16384);
    max_dropped += c > 16384 ? c - 16384 : 0;
  }
  CHECK(report.steps_recorded + report.steps_dropped == total);
  CHECK(report.steps_recorded >= min_recorded);
  CHECK(report.steps_dropped <= max_dropped);
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

TEST_CASE("finish is idempotent, steps after it are ignored, the destructor finishes",
          "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  {
    trainmeter::Session session(cfg);
    { auto s = session.step(1); }
    const auto a = session.finish();
    {
      auto late = session.step(1);
      CHECK_FALSE(late.active());
    }
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
    outside.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
  }
  const json doc = trainmeter::test::read_json(session.finish().path);
  for (int i = 0; i < 20; ++i) {
    const auto inside = doc["steps"][i]["wall_ns"].get<std::int64_t>();
    CHECK(inside >= 300000);
    CHECK(inside <= outside[i]);  // the scope lies inside the outer measurement
  }
}

TEST_CASE("names with quotes, backslashes, newlines and non-ASCII survive the report",
          "[session]") {
  TempDir dir;
  auto cfg = quiet_config(dir);
  cfg.run_name = "run \"quoted\" \\ back\nslash ünïcødé";
  cfg.output = dir / "odd.json";
  cfg.tags = {{"k\"ey", "va\\lue\n2"}, {"bad-utf8", std::string("\xff\xfe", 2)}};
  trainmeter::Session session(cfg);
  {
    auto s = session.step(1, "phase \"x\"\t✓");
    s.set_loss(std::nan(""));
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["run"]["name"] == cfg.run_name);
  CHECK(doc["run"]["tags"]["k\"ey"] == "va\\lue\n2");
  CHECK(doc["run"]["tags"]["bad-utf8"] == "\xEF\xBF\xBD\xEF\xBF\xBD");  // replaced, not corrupt
  CHECK(doc["phases"].contains("phase \"x\"\t✓"));
  CHECK(doc["steps"][0]["loss"].is_null());  // NaN becomes null
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}

// Phases are capped at kMaxPhases (32, "train" included): a 33rd name is counted under the last
// interned phase, with a diagnostic. Metrics at kMaxMetrics (4): a 5th gets an invalid id, its
// values are not recorded, with a diagnostic.
TEST_CASE("phase and metric caps: counted where documented, with a diagnostic each", "[session]") {
  static_assert(trainmeter::kMaxPhases == 32 && trainmeter::kMaxMetrics == 4, "the figures below");
  TempDir dir;
  trainmeter::Session session(quiet_config(dir));
  std::vector<std::string> names;
  for (int i = 1; i < 32; ++i) names.push_back("p" + std::to_string(i));
  for (const auto& n : names) auto s = session.step(1, n.c_str());  // 31 phases + train = 32
  const std::string extra = "p32";
  const auto overflow = session.phase(extra.c_str());
  CHECK(overflow.id == 31);  // the last interned phase, p31
  CHECK(session.phase(std::string("p32").c_str()).id == 31);
  { auto s = session.step(1, overflow); }
  const trainmeter::MetricId m[] = {session.metric("m0"), session.metric("m1"),
                                    session.metric("m2"), session.metric("m3")};
  const trainmeter::MetricId fifth = session.metric("m4");
  for (int i = 0; i < 4; ++i) CHECK(m[i].index == i);
  CHECK(fifth.index >= trainmeter::kMaxMetrics);
  CHECK(session.metric("m1").index == 1);  // known names keep their id
  {
    auto s = session.step(1);
    for (int i = 0; i < 4; ++i) s.set_metric(m[i], 10.0 + i);
    s.set_metric(fifth, 99.0);  // ignored
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["phases"].size() == 32);
  CHECK(doc["phases"].contains("p31"));
  CHECK_FALSE(doc["phases"].contains("p32"));
  CHECK(doc["phases"]["p31"]["steps"] == 2);  // its own step and the overflowing one
  const json& last = doc["steps"].back();
  CHECK(last["metrics"].size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(last["metrics"]["m" + std::to_string(i)] == 10.0 + i);
  CHECK_FALSE(last["metrics"].contains("m4"));
  // Diagnostics merge by (source, status): one session/dropped entry counting the two look-ups
  // of the 33rd phase name and the 5th metric, first message kept, last one remembered.
  const json* dropped = nullptr;
  for (const json& d : doc["diagnostics"])
    if (d["source"] == "session" && d["status"] == "dropped") dropped = &d;
  REQUIRE(dropped != nullptr);
  CHECK((*dropped)["count"] == 3);
  CHECK((*dropped)["message"] == "more than 32 phases; 'p32' is counted as 'p31'");
  CHECK((*dropped)["last_message"] == "more than 4 metrics; 'm4' is not recorded");
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}
