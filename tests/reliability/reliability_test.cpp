// Faults injected into a running Session that no single module's tests cover: output going away,
// /proc unreadable, extreme step durations fed through the real collector, scopes left open,
// concurrent finish(), and a starved collector. docs/reliability.md lists every fault with its
// test.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <trainmeter/trainmeter.hpp>

#include "base/component.hpp"
#include "core/session_impl.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;

namespace {

trainmeter::Config config_in(const TempDir& dir, const std::string& name) {
  trainmeter::Config c;
  c.run_name = name;
  c.output = dir / (name + ".json");
  c.warmup_steps = 0;
  c.sample_interval_ms = 20;
  c.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  return c;
}

const json* diagnostic(const json& doc, const std::string& source, const std::string& status) {
  for (const json& d : doc["diagnostics"])
    if (d["source"] == source && d["status"] == status) return &d;
  return nullptr;
}

// Writes one crafted record into the calling thread's ring: the collector, aggregates and report
// builder see it exactly as if a StepScope had measured it.
void inject_step(trainmeter::Session& session, std::int64_t start_ns, std::int64_t wall_ns) {
  auto* hot = session.impl()->hot();
  trainmeter::detail::TlsRing& tls = trainmeter::detail::tls_ring();
  trainmeter::detail::ThreadRing* ring =
      tls.session_id == hot->id ? tls.ring : trainmeter::detail::attach_thread(hot);
  REQUIRE(ring != nullptr);
  ring->enter();
  trainmeter::detail::StepRecord* r = ring->begin_write();
  REQUIRE(r != nullptr);
  *r = trainmeter::detail::StepRecord{};
  r->start_ns = start_ns;
  r->wall_ns = wall_ns;
  r->cpu_ns = -1;
  r->peak_tensor_bytes = -1;
  r->loss = std::nan("");
  for (double& m : r->metrics) m = std::nan("");
  r->samples = 1;
  r->seq = ring->next_seq();
  r->thread = ring->index();
  ring->commit();
  ring->leave();
}

}  // namespace

TEST_CASE("a report path on a read-only file system fails at construction naming output",
          "[reliability][output]") {
  for (const std::string path :
       {"/proc/trainmeter-test/run.json", "/proc/self/run.json", "/sys/trainmeter-test.json"}) {
    trainmeter::Config c;
    c.output = path;
    try {
      trainmeter::Session session(c);
      FAIL("no error for " << path);
    } catch (const trainmeter::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("output") != std::string::npos);
      // The report path, or the directory that could not be created or written, is named.
      CHECK(what.find(std::filesystem::path(path).parent_path().string()) != std::string::npos);
    }
  }
}

TEST_CASE("the report's directory removed mid-run: finish() returns, io_error diagnostic",
          "[reliability][output]") {
  TempDir dir;
  auto c = config_in(dir, "gone");
  c.output = dir / "sub/gone.json";
  trainmeter::Session session(c);
  { auto s = session.step(1); }
  std::filesystem::remove_all(dir / "sub");
  { auto s = session.step(1); }  // training continues
  const auto report = session.finish();
  CHECK_FALSE(report.written);
  CHECK(report.steps_recorded == 2);
  CHECK_FALSE(std::filesystem::exists(c.output));
  // The caller still gets the whole report text, with the failure in it.
  const json doc = json::parse(report.json);
  const json* d = diagnostic(doc, "report", "io_error");
  REQUIRE(d != nullptr);
  CHECK((*d)["message"].get<std::string>().find("gone.json") != std::string::npos);
  CHECK(doc["run"]["steps_recorded"] == 2);
}

TEST_CASE("/proc unreadable: the run completes with nulls and diagnostics", "[reliability][proc]") {
  TempDir dir;
  auto c = config_in(dir, "noproc");
  c.proc_root = dir / "empty-proc";
  std::filesystem::create_directories(c.proc_root);
  trainmeter::Session session(c);
  for (int i = 0; i < 3; ++i) auto s = session.step(4);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // a few sampler ticks
  // getrusage's peak only grows: read before and after finish(), it brackets the report's.
  rusage before{};
  REQUIRE(::getrusage(RUSAGE_SELF, &before) == 0);
  const auto report = session.finish();
  REQUIRE(report.written);
  CHECK(report.status == "completed");
  CHECK(report.steps_recorded == 3);
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(trainmeter::test::schema_errors(report.path) == "");
  REQUIRE(doc["memory"].is_object());
  // Nothing from /proc: the sampled figures are null and the peak falls back to getrusage, as
  // the report says.
  CHECK(doc["memory"]["current_rss_bytes"].is_null());
  CHECK(doc["memory"]["sampled_peak_rss_bytes"].is_null());
  CHECK(doc["memory"]["peak_rss_source"] == "getrusage");
  rusage after{};
  REQUIRE(::getrusage(RUSAGE_SELF, &after) == 0);
  REQUIRE(before.ru_maxrss > 0);
  CHECK(doc["memory"]["peak_rss_bytes"].get<std::int64_t>() >=
        std::int64_t(before.ru_maxrss) * 1024);
  CHECK(doc["memory"]["peak_rss_bytes"].get<std::int64_t>() <=
        std::int64_t(after.ru_maxrss) * 1024);
  bool proc_diagnosed = false;
  for (const json& d : doc["diagnostics"])
    proc_diagnosed =
        proc_diagnosed || d["message"].get<std::string>().find(c.proc_root) != std::string::npos;
  CHECK(proc_diagnosed);
}

TEST_CASE("zero-length and hours-long steps go through the collector exactly",
          "[reliability][steps]") {
  TempDir dir;
  auto c = config_in(dir, "extremes");
  c.energy_sources = {"estimate"};
  c.cpu_tdp_w = 100.0;
  trainmeter::Session session(c);
  const std::int64_t t0 = trainmeter::detail::now_ns();
  constexpr std::int64_t kHours3 = 3LL * 3600 * 1000000000;
  constexpr std::int64_t kMs = 1000000;
  inject_step(session, t0, 0);
  inject_step(session, t0, 0);
  inject_step(session, t0, kMs);
  inject_step(session, t0 + kMs, kHours3);  // ends long after the run
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  const auto report = session.finish();
  REQUIRE(report.written);
  CHECK(trainmeter::test::schema_errors(report.path) == "");
  const json doc = trainmeter::test::read_json(report.path);
  const json& st = doc["phases"]["train"]["step_time_ns"];
  CHECK(doc["phases"]["train"]["steps"] == 4);
  CHECK(st["min"].get<double>() == 0.0);
  CHECK(st["max"].get<double>() == double(kHours3));
  CHECK(st["mean"].get<double>() == Approx((0.0 + 0.0 + kMs + kHours3) / 4).epsilon(1e-12));
  // Exact percentiles from the retained steps (closest-rank interpolation): p50 between 0 and 1 ms.
  CHECK(st["p50"].get<double>() == Approx(kMs / 2.0).epsilon(1e-12));
  CHECK(doc["phases"]["train"]["duration_s"].get<double>() == Approx(1e-9 * (kMs + kHours3)));
  const json& steps = doc["steps"];
  REQUIRE(steps.size() == 4);
  CHECK(steps[0]["wall_ns"] == 0);
  CHECK(steps[3]["wall_ns"] == kHours3);
  // Energy apportioned to steps stays finite and within the run's total, whatever the overlap.
  REQUIRE(doc["energy"].is_object());
  REQUIRE(doc["energy"]["total_j"].is_number());
  const double total = doc["energy"]["total_j"].get<double>();
  double steps_j = 0;
  for (const json& s : steps) {
    if (!s.contains("energy_j") || s["energy_j"].is_null()) continue;
    const double j = s["energy_j"].get<double>();
    CHECK(std::isfinite(j));
    CHECK(j >= 0);
    steps_j += j;
  }
  CHECK(steps_j <= total * (1 + 1e-9) + 1e-12);
}

TEST_CASE("a step scope left open at finish() is counted and closing it later is harmless",
          "[reliability][steps]") {
  TempDir dir;
  trainmeter::Session session(config_in(dir, "open"));
  { auto s = session.step(1); }
  trainmeter::StepScope open = session.step(1);
  REQUIRE(open.active());
  const auto t = std::chrono::steady_clock::now();
  const auto report = session.finish();
  const auto waited = std::chrono::steady_clock::now() - t;
  // finish() waits a bounded time (200 ms) for open scopes, then reports them.
  CHECK(waited < std::chrono::seconds(5));
  CHECK(report.steps_recorded == 1);
  const json doc = json::parse(report.json);
  CHECK(doc["run"]["steps_dropped"] == 1);
  const json* d = diagnostic(doc, "session", "dropped");
  REQUIRE(d != nullptr);
  CHECK((*d)["message"].get<std::string>().find("still open at finish()") != std::string::npos);
  open.stop();  // after finish(): writes into a ring nobody drains, changes nothing
  CHECK(session.finish().json == report.json);
}

TEST_CASE("finish() from four threads at once: one report, the same for every caller",
          "[reliability][threads]") {
  TempDir dir;
  trainmeter::Session session(config_in(dir, "racing"));
  for (int i = 0; i < 100; ++i) auto s = session.step(1);
  std::vector<std::string> texts(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { texts[t] = session.finish().json; });
  for (auto& t : threads) t.join();
  for (const auto& text : texts) CHECK(text == texts[0]);
  CHECK(json::parse(texts[0])["run"]["steps_recorded"] == 100);
}

namespace {

// A component whose steps() blocks until released: the collector thread stalls inside drain(),
// as it would behind a slow file system or a descheduled process.
class StallingComponent : public trainmeter::detail::Component {
 public:
  const char* name() const noexcept override { return "stall"; }
  void steps(const trainmeter::detail::StepRecord*, std::size_t) noexcept override {
    std::unique_lock<std::mutex> lock(mutex_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

}  // namespace

TEST_CASE("ring overflow while the collector is starved: counted, never blocks, never corrupts",
          "[reliability][threads]") {
  TempDir dir;
  trainmeter::Session session(config_in(dir, "starved"));
  auto stall = std::make_unique<StallingComponent>();
  StallingComponent* stall_ptr = stall.get();
  REQUIRE(session.impl()->add_component(std::move(stall)));
  { auto s = session.step(1); }
  stall_ptr->wait_entered();  // the collector took that step and now hangs
  constexpr std::uint64_t kCapacity = trainmeter::detail::ThreadRing::kCapacity;
  constexpr std::uint64_t kExtra = 5000;
  // The collector stays blocked until release() below, after the loop: had any step waited for
  // it, the loop would never end (CTest's timeout would fail the test). No clock is needed.
  std::uint64_t active = 0;
  for (std::uint64_t i = 0; i < kCapacity + kExtra; ++i) {
    auto s = session.step(1);
    s.set_loss(double(i));
    active += s.active() ? 1 : 0;
  }
  stall_ptr->release();
  const auto report = session.finish();
  CHECK(active == kCapacity + kExtra);  // every scope ran; the full ring drops, it doesn't wait
  CHECK(report.steps_dropped == kExtra);
  CHECK(report.steps_recorded == 1 + kCapacity);
  CHECK(report.steps_recorded + report.steps_dropped == 1 + kCapacity + kExtra);
  const json doc = json::parse(report.json);
  const json* d = diagnostic(doc, "session", "dropped");
  REQUIRE(d != nullptr);
  CHECK((*d)["count"] == kExtra);
  // The records that made it are intact and in order: losses 0..kCapacity-1 after the first step.
  const json& steps = doc["steps"];
  REQUIRE(steps.size() == 1 + kCapacity);
  bool ordered = true;
  for (std::uint64_t i = 1; i < steps.size(); ++i)
    ordered = ordered && steps[i]["loss"].get<double>() == double(i - 1);
  CHECK(ordered);
}
