// GPU step timing (core/gpu_timing.hpp) through a real Session, with a fake event source whose
// device clock and completion the test scripts: the pool, activation, ordering, exhaustion,
// errors and the bounded wait at finish() are the code the CUDA build runs, minus CUDA.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <trainmeter/trainmeter.hpp>

#include "core/gpu_timing.hpp"
#include "core/session_impl.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::detail::GpuEventSource;
using trainmeter::test::TempDir;

namespace {

// Shared between the test and the source the session owns.
struct FakeDevice {
  std::mutex mutex;
  std::int64_t clock_ns = 0;         // the device clock a record reads
  std::vector<std::int64_t> stamp;   // per event: device time when recorded
  std::vector<std::uint64_t> order;  // per event: record sequence number
  std::uint64_t recorded = 0;        // events recorded so far
  std::uint64_t completed = 0;       // events with order < completed have completed
  int not_yet = 0;                   // prepare() answers kNotYet this many more times
  bool unavailable = false;
  std::uint64_t fail_record_at = ~0ull;  // the record with this sequence number fails
  std::uint32_t error_event = ~0u;       // query() of this event reports an error
  std::atomic<bool> prepared{false};

  void set_clock(std::int64_t t) {
    std::lock_guard<std::mutex> lock(mutex);
    clock_ns = t;
  }
  void complete_all() {
    std::lock_guard<std::mutex> lock(mutex);
    completed = recorded;
  }
};

class FakeSource final : public GpuEventSource {
 public:
  explicit FakeSource(std::shared_ptr<FakeDevice> d) : d_(std::move(d)) {}
  const char* name() const noexcept override { return "fake_event"; }
  Prepare prepare(std::uint32_t n) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (d_->unavailable) return Prepare::kUnavailable;
    if (d_->not_yet > 0) {
      --d_->not_yet;
      return Prepare::kNotYet;
    }
    d_->stamp.assign(n, -1);
    d_->order.assign(n, ~0ull);
    d_->prepared = true;
    return Prepare::kReady;
  }
  std::string device() const override { return "fake:0"; }
  std::string reason() const override { return "fake reason"; }
  bool record(std::uint32_t e) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (d_->recorded == d_->fail_record_at) {
      ++d_->recorded;
      return false;
    }
    d_->stamp[e] = d_->clock_ns;
    d_->order[e] = d_->recorded++;
    return true;
  }
  Status query(std::uint32_t e) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (e == d_->error_event) return Status::kError;
    return d_->order[e] < d_->completed ? Status::kReady : Status::kPending;
  }
  Status elapsed_ns(std::uint32_t a, std::uint32_t b, std::int64_t& ns) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (d_->order[a] >= d_->completed || d_->order[b] >= d_->completed) return Status::kPending;
    ns = d_->stamp[b] - d_->stamp[a];
    return Status::kReady;
  }

 private:
  std::shared_ptr<FakeDevice> d_;
};

trainmeter::Config quiet(const TempDir& dir) {
  trainmeter::Config c;
  c.run_name = "gpu";
  c.output = dir / "gpu.json";
  c.warmup_steps = 0;
  c.sample_interval_ms = 20;
  return c;
}

// Until the collector prepared the source and registered the step hooks.
void wait_prepared(trainmeter::Session& s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (s.impl()->hot()->hook_mask.load() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(s.impl()->hot()->hook_mask.load() != 0);
}

// One step whose device time is `gpu_ns`: the start event reads clock t, the end event t+gpu_ns.
void gpu_step(trainmeter::Session& s, FakeDevice& d, std::int64_t t, std::int64_t gpu_ns,
              const char* phase = "train") {
  d.set_clock(t);
  auto step = s.step(1, phase);
  d.set_clock(t + gpu_ns);
}

}  // namespace

TEST_CASE("GPU time per step comes from the device events, exactly, once the device is in use",
          "[gpu][session]") {
  TempDir dir;
  auto dev = std::make_shared<FakeDevice>();
  dev->not_yet = 3;  // the program has not touched the device for the first collector ticks
  trainmeter::Session session(quiet(dir));
  REQUIRE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev)));
  CHECK_FALSE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev)));  // once

  { auto before = session.step(1); }  // before activation: no GPU time, counted
  wait_prepared(session);
  // Five train steps of 1..5 ms device time, two eval steps of 7 and 9 us.
  for (int i = 1; i <= 5; ++i) gpu_step(session, *dev, 100'000'000 * i, 1'000'000 * i);
  gpu_step(session, *dev, 900'000'000, 7'000, "eval");
  gpu_step(session, *dev, 910'000'000, 9'000, "eval");
  dev->complete_all();
  const auto report = session.finish();
  REQUIRE(report.written);
  CHECK(trainmeter::test::schema_errors(report.path) == "");
  const json doc = trainmeter::test::read_json(report.path);

  const json& steps = doc["steps"];
  REQUIRE(steps.size() == 8);
  CHECK(steps[0]["gpu_ns"].is_null());
  for (int i = 1; i <= 5; ++i) CHECK(steps[i]["gpu_ns"] == 1'000'000 * i);
  CHECK(steps[6]["gpu_ns"] == 7'000);
  CHECK(steps[7]["gpu_ns"] == 9'000);

  // Hand-computed over {0 (not timed), 1, 2, 3, 4, 5} ms: five timed steps, mean 3 ms.
  const json& train = doc["phases"]["train"]["gpu_time_ns"];
  CHECK(train["min"] == 1'000'000);
  CHECK(train["max"] == 5'000'000);
  CHECK(train["mean"].get<double>() == 3'000'000.0);
  CHECK(train["p50"] == 3'000'000);
  CHECK(train["percentiles_exact"] == true);
  const json& eval = doc["phases"]["eval"]["gpu_time_ns"];
  CHECK(eval["min"] == 7'000);
  CHECK(eval["max"] == 9'000);

  const json& g = doc["run"]["gpu_timing"];
  CHECK(g["method"] == "fake_event");
  CHECK(g["active"] == true);
  CHECK(g["device"] == "fake:0");
  CHECK(g["steps_timed"] == 7);
  CHECK(g["steps_before_active"] == 1);
  CHECK(g["steps_pool_exhausted"] == 0);
  CHECK(g["steps_failed"] == 0);
  CHECK(g["steps_unresolved"] == 0);
  CHECK(g["busy_ns"] == 15'000'000 + 16'000);
  const double duration = doc["run"]["duration_s"].get<double>();
  CHECK(g["busy_fraction"].get<double>() == Approx(15.016e-3 / duration));
}

TEST_CASE("an exhausted event pool and failed records give null GPU times, counted",
          "[gpu][session]") {
  TempDir dir;
  auto dev = std::make_shared<FakeDevice>();
  dev->fail_record_at = 2 * 5;  // the start event of the sixth recorded step fails
  trainmeter::Session session(quiet(dir));
  // Four pairs: the device "never completes" while 7 steps are recorded, so pairs run out.
  REQUIRE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev), 4));
  wait_prepared(session);
  for (int i = 0; i < 7; ++i) gpu_step(session, *dev, 1'000 * i, 100 + i);
  dev->complete_all();
  const auto report = session.finish();
  REQUIRE(report.written);
  const json doc = trainmeter::test::read_json(report.path);
  const json& steps = doc["steps"];
  REQUIRE(steps.size() == 7);
  // Steps 0-3 hold the four pairs; 4-6 find none free: the collector may release pairs between
  // steps only once the device completed them, and it completes nothing before finish().
  for (int i = 0; i < 4; ++i) CHECK(steps[i]["gpu_ns"] == 100 + i);
  for (int i = 4; i < 7; ++i) CHECK(steps[i]["gpu_ns"].is_null());
  const json& g = doc["run"]["gpu_timing"];
  CHECK(g["steps_timed"] == 4);
  CHECK(g["steps_pool_exhausted"] == 3);
  CHECK(g["steps_failed"] == 0);  // the failing record (sequence 10) was never reached
  bool counted = false;
  for (const auto& d : doc["diagnostics"])
    if (d["source"] == "gpu_timing" && d["status"] == "dropped" && d["count"] == 3) counted = true;
  CHECK(counted);
}

TEST_CASE("a failed event record or a device error gives that step null, and training goes on",
          "[gpu][session]") {
  TempDir dir;
  auto dev = std::make_shared<FakeDevice>();
  dev->fail_record_at = 3;  // the end event of the second step fails to record
  trainmeter::Session session(quiet(dir));
  REQUIRE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev), 8));
  wait_prepared(session);
  dev->error_event = 2 * 2 + 1;  // pair 2's end event reports a device error when queried
  for (int i = 0; i < 4; ++i) gpu_step(session, *dev, 1'000'000 * i, 50 * (i + 1));
  dev->complete_all();
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  const json& steps = doc["steps"];
  REQUIRE(steps.size() == 4);
  CHECK(steps[0]["gpu_ns"] == 50);
  CHECK(steps[1]["gpu_ns"].is_null());  // record failed; its pair was released
  // The failed step released pair 1, so the third step claimed pair 2 (round-robin): error.
  CHECK(steps[2]["gpu_ns"].is_null());
  CHECK(steps[3]["gpu_ns"] == 200);
  const json& g = doc["run"]["gpu_timing"];
  CHECK(g["steps_timed"] == 2);
  CHECK(g["steps_failed"] == 2);
}

TEST_CASE("finish() waits a bounded time for in-flight GPU steps, then reports them unresolved",
          "[gpu][session]") {
  TempDir dir;
  auto dev = std::make_shared<FakeDevice>();
  trainmeter::Session session(quiet(dir));
  REQUIRE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev)));
  wait_prepared(session);
  gpu_step(session, *dev, 0, 1234);
  gpu_step(session, *dev, 10'000, 4321);
  // The device finishes the first step's events only; the second never completes.
  {
    std::lock_guard<std::mutex> lock(dev->mutex);
    dev->completed = 2;
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["steps"][0]["gpu_ns"] == 1234);
  CHECK(doc["steps"][1]["gpu_ns"].is_null());
  CHECK(doc["run"]["gpu_timing"]["steps_unresolved"] == 1);
  CHECK(doc["run"]["gpu_timing"]["steps_timed"] == 1);
}

TEST_CASE("GPU timing off by configuration, or an unavailable device, times nothing",
          "[gpu][session]") {
  TempDir dir;
  SECTION("gpu_step_time = false") {
    auto cfg = quiet(dir);
    cfg.gpu_step_time = false;
    trainmeter::Session session(cfg);
    CHECK_FALSE(session.impl()->attach_gpu_timing(
        std::make_unique<FakeSource>(std::make_shared<FakeDevice>())));
    { auto s = session.step(1); }
    const json doc = trainmeter::test::read_json(session.finish().path);
    CHECK(doc["run"]["gpu_timing"].is_null());
    CHECK(doc["steps"][0]["gpu_ns"].is_null());
    CHECK(doc["phases"]["train"]["gpu_time_ns"].is_null());
  }
  SECTION("no device") {
    auto dev = std::make_shared<FakeDevice>();
    dev->unavailable = true;
    trainmeter::Session session(quiet(dir));
    REQUIRE(session.impl()->attach_gpu_timing(std::make_unique<FakeSource>(dev)));
    for (int i = 0; i < 3; ++i) auto s = session.step(1);
    const auto report = session.finish();
    CHECK(trainmeter::test::schema_errors(report.path) == "");
    const json doc = trainmeter::test::read_json(report.path);
    const json& g = doc["run"]["gpu_timing"];
    CHECK(g["active"] == false);
    CHECK(g["device"].is_null());
    CHECK(g["unavailable_reason"] == "fake reason");
    CHECK(g["steps_timed"] == 0);
    CHECK(g["busy_fraction"].is_null());
    CHECK(doc["phases"]["train"]["gpu_time_ns"].is_null());
  }
}

TEST_CASE("step hooks live in slots: added and removed by handle, in any order", "[gpu][hooks]") {
  trainmeter::detail::HotState hot;
  struct Counter {
    int begins = 0, ends = 0;
    std::uint32_t last_token = 0;
  };
  Counter a, b;
  const trainmeter::detail::StepHooks ha{
      [](void* p) noexcept -> std::uint32_t {
        return static_cast<std::uint32_t>(++static_cast<Counter*>(p)->begins);
      },
      [](void* p, std::uint32_t t, trainmeter::detail::StepRecord&) noexcept {
        auto* c = static_cast<Counter*>(p);
        ++c->ends;
        c->last_token = t;
      },
      &a};
  trainmeter::detail::StepHooks hb = ha;
  hb.ctx = &b;
  const int sa = trainmeter::detail::add_step_hooks(hot, &ha);
  const int sb = trainmeter::detail::add_step_hooks(hot, &hb);
  CHECK(sa == 0);
  CHECK(sb == 1);
  CHECK(hot.hook_mask.load() == 3u);
  // Removing the first leaves the second in place (no chain to break), and vice versa.
  trainmeter::detail::remove_step_hooks(hot, sa, &ha);
  CHECK(hot.hook_mask.load() == 2u);
  CHECK(hot.hook_slots[1].load() == &hb);
  trainmeter::detail::remove_step_hooks(hot, sb, &ha);  // wrong handle owner: ignored
  CHECK(hot.hook_mask.load() == 2u);
  trainmeter::detail::remove_step_hooks(hot, sb, &hb);
  CHECK(hot.hook_mask.load() == 0u);
  // Every slot can be taken, then no more.
  for (int i = 0; i < trainmeter::detail::kMaxStepHooks; ++i)
    CHECK(trainmeter::detail::add_step_hooks(hot, &ha) == i);
  CHECK(trainmeter::detail::add_step_hooks(hot, &hb) == -1);
}
