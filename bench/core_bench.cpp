// The step path against its floor, side by side in one binary (docs/performance.md).
//
//   build/bin/bench_core --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <trainmeter/trainmeter.hpp>

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
