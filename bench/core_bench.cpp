// The step path against its floor, side by side in one binary (docs/performance.md).
//
//   build/bin/bench_core --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <trainmeter/trainmeter.hpp>

#include "core/gpu_timing.hpp"
#include "core/session_impl.hpp"

namespace {

// The floor: two steady_clock reads and one 64-byte write into a preallocated ring.
struct alignas(64) Record64 {
  std::int64_t start, wall, a, b, c, d, e, f;
};

void BM_floor_2clocks_64B_ring(benchmark::State& state) {
  static Record64 ring[16384];
  std::uint64_t head = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::ClobberMemory();
    const auto t1 = std::chrono::steady_clock::now();
    Record64& r = ring[head++ & 16383];
    r.start = t0.time_since_epoch().count();
    r.wall = (t1 - t0).count();
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_floor_2clocks_64B_ring);

trainmeter::Config bench_config(bool enabled, bool cpu) {
  trainmeter::Config c;
  c.enabled = enabled;
  c.step_cpu_time = cpu;
  c.run_name = "bench_core";
  c.output = "/tmp/trainmeter-bench/core.json";
  c.max_retained_steps = 1000;
  c.energy_sources = {"estimate"};
  return c;
}

// Waits until the collector has taken `n` steps out of the rings (bounded).
void wait_collected(trainmeter::Session& session, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (session.impl()->steps_collected() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
}

// Records steps; every ring's worth, waits (untimed) for the collector so no step is dropped
// and the timed path is always the full write, never the cheaper "ring full" exit.
void run_scopes(benchmark::State& state, trainmeter::Session& session) {
  std::uint64_t n = 0;
  for (auto _ : state) {
    {
      auto step = session.step(1);
      benchmark::ClobberMemory();
    }
    if ((++n & 8191) == 0 && session.enabled()) {
      state.PauseTiming();
      wait_collected(session, n);
      state.ResumeTiming();
    }
  }
  const auto report = session.finish();
  state.counters["dropped"] = double(report.steps_dropped);
}

// The loop alone (ClobberMemory included): what every variant pays regardless.
void BM_empty_loop(benchmark::State& state) {
  for (auto _ : state) benchmark::ClobberMemory();
}
BENCHMARK(BM_empty_loop);

void BM_step_scope_disabled(benchmark::State& state) {
  trainmeter::Session session(bench_config(false, false));
  for (auto _ : state) {
    auto step = session.step(1);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_step_scope_disabled);

void BM_step_scope_enabled(benchmark::State& state) {
  trainmeter::Session session(bench_config(true, false));
  run_scopes(state, session);
}
BENCHMARK(BM_step_scope_enabled);

// GPU step timing's share of the step path: the hooks claim an event pair (one compare-exchange)
// and call the source's record() twice. The source here records nothing and every event is
// complete at once, so this is trainmeter's own cost; cudaEventRecord's enqueue adds to it on a
// GPU (measured by scripts/gpu-check.sh).
class NoopGpuSource final : public trainmeter::detail::GpuEventSource {
 public:
  const char* name() const noexcept override { return "noop"; }
  Prepare prepare(std::uint32_t) noexcept override { return Prepare::kReady; }
  std::string device() const override { return "noop:0"; }
  std::string reason() const override { return ""; }
  bool record(std::uint32_t e) noexcept override {
    benchmark::DoNotOptimize(e);
    return true;
  }
  Status query(std::uint32_t) noexcept override { return Status::kReady; }
  Status elapsed_ns(std::uint32_t, std::uint32_t, std::int64_t& ns) noexcept override {
    ns = 1;
    return Status::kReady;
  }
};

// The two hooks a GPU-timed step adds (claim a pair, two records), called as StepScope calls
// them; every 1,024 steps the pairs are resolved and released outside the timed region (the
// collector's work), so the pool never runs dry as it would in a loop of empty steps.
void BM_gpu_event_hooks(benchmark::State& state) {
  trainmeter::detail::HotState hot;
  trainmeter::detail::GpuStepTimer timer(std::make_unique<NoopGpuSource>(), &hot, 1024);
  timer.poll_prepare();
  const trainmeter::detail::StepHooks* h = hot.hook_slots[0].load();
  std::vector<trainmeter::detail::StepRecord> records(1024);
  std::size_t n = 0;
  for (auto _ : state) {
    trainmeter::detail::StepRecord& r = records[n];
    const std::uint32_t token = h->on_begin(h->ctx);
    h->on_end(h->ctx, token, r);
    if (++n == records.size()) {
      state.PauseTiming();
      for (const auto& rec : records) timer.track(rec, false, 0);
      timer.resolve([](const trainmeter::detail::GpuPending&, std::int64_t) {}, false);
      n = 0;
      state.ResumeTiming();
    }
  }
}
BENCHMARK(BM_gpu_event_hooks);

void BM_step_scope_with_cpu_time(benchmark::State& state) {
  trainmeter::Session session(bench_config(true, true));
  run_scopes(state, session);
}
BENCHMARK(BM_step_scope_with_cpu_time);

long max_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

long current_rss_kb() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Ten million recorded steps with the default retention cap: resident memory stays bounded.
void BM_ten_million_steps_memory(benchmark::State& state) {
  for (auto _ : state) {
    trainmeter::Config c = bench_config(true, false);
    c.max_retained_steps = 100000;
    const long before = current_rss_kb();
    trainmeter::Session session(c);
    long after_1m = 0;
    for (std::uint64_t i = 0; i < 10'000'000; ++i) {
      { auto step = session.step(1); }
      if ((i & 8191) == 8191) wait_collected(session, i + 1);
      if (i == 1'000'000) after_1m = current_rss_kb();
    }
    const long after_10m = current_rss_kb();
    const auto report = session.finish();
    state.counters["rss_added_at_1M_MiB"] = double(after_1m - before) / 1024;
    state.counters["rss_added_at_10M_MiB"] = double(after_10m - before) / 1024;
    state.counters["steps_recorded"] = double(report.steps_recorded);
    state.counters["dropped"] = double(report.steps_dropped);
    state.counters["max_rss_MiB"] = double(max_rss_kb()) / 1024;
  }
}
BENCHMARK(BM_ten_million_steps_memory)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
