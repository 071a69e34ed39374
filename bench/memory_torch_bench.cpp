// Memory tracking costs, side by side in one binary (see docs/performance.md, section "memory"):
//  - one CPU allocator event (allocate + free of 64 B) without and with the reporter installed;
//  - a tiny training step (Linear 64->64, batch 32, fwd + MSE + bwd + SGD) without trainmeter and
//    with a Session (RSS sampling) + step scope + reporter, paired and interleaved;
//  - the process-memory sampler at 10 Hz, as CPU time of the whole process while idle.
// Run with OMP_NUM_THREADS=1; the benchmarks also call at::set_num_threads(1).
#include <sys/resource.h>

#include <benchmark/benchmark.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/component.hpp"
#include "memory/process_memory.hpp"
#include "torch/torch_state.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"

namespace {

void alloc_free(benchmark::State& state, bool reporter) {
  at::set_num_threads(1);
  auto st = trainmeter::detail::make_torch_state();
  if (reporter && !trainmeter::detail::install_reporter(*st)) {
    state.SkipWithError("could not install the reporter");
    return;
  }
  c10::Allocator* alloc = c10::GetCPUAllocator();
  for (auto _ : state) {
    c10::DataPtr p = alloc->allocate(64);
    benchmark::DoNotOptimize(p.get());
  }
  if (reporter) trainmeter::detail::uninstall_reporter(*st);
  state.counters["events_per_iter"] = 2;
}
void BM_cpu_alloc_free_plain(benchmark::State& s) {
  alloc_free(s, false);
}
void BM_cpu_alloc_free_reporter(benchmark::State& s) {
  alloc_free(s, true);
}
BENCHMARK(BM_cpu_alloc_free_plain);
BENCHMARK(BM_cpu_alloc_free_reporter);

struct Tiny {
  torch::nn::Linear lin{64, 64};
  torch::optim::SGD opt{lin->parameters(), torch::optim::SGDOptions(0.01)};
  torch::Tensor x = torch::randn({32, 64});
  torch::Tensor y = torch::randn({32, 64});
  void step() {
    opt.zero_grad();
    auto loss = torch::mse_loss(lin->forward(x), y);
    loss.backward();
    opt.step();
  }
};

trainmeter::Config bench_config() {
  trainmeter::Config cfg;
  cfg.output = (std::filesystem::temp_directory_path() / "trainmeter-memory-bench.json").string();
  cfg.progress = "off";
  cfg.energy_sources = {"estimate"};
  cfg.sample_interval_ms = 100;
  return cfg;
}

void BM_tiny_step_plain(benchmark::State& state) {
  at::set_num_threads(1);
  Tiny t;
  for (auto _ : state) t.step();
}
BENCHMARK(BM_tiny_step_plain)->MinTime(2.0);

void BM_tiny_step_tracked(benchmark::State& state) {
  at::set_num_threads(1);
  Tiny t;
  trainmeter::Session session(bench_config());
  auto track = trainmeter::torch::track_memory(session);
  for (auto _ : state) {
    auto s = session.step(32);
    t.step();
  }
  session.finish();
}
BENCHMARK(BM_tiny_step_tracked)->MinTime(2.0);

// Paired, interleaved: blocks of 200 steps alternate plain / tracked on the same model, so slow
// drifts of the host hit both; reports the median of the per-pair ratios.
void BM_tiny_step_paired(benchmark::State& state) {
  at::set_num_threads(1);
  Tiny t;
  trainmeter::Session session(bench_config());
  constexpr int kBlock = 200;
  std::vector<double> ratios, plain_us, tracked_us;
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    const auto t0 = clock::now();
    for (int i = 0; i < kBlock; ++i) t.step();
    const auto t1 = clock::now();
    {
      auto track = trainmeter::torch::track_memory(session);
      for (int i = 0; i < kBlock; ++i) {
        auto s = session.step(32);
        t.step();
      }
    }
    const auto t2 = clock::now();
    const double a = std::chrono::duration<double, std::micro>(t1 - t0).count() / kBlock;
    const double b = std::chrono::duration<double, std::micro>(t2 - t1).count() / kBlock;
    plain_us.push_back(a);
    tracked_us.push_back(b);
    ratios.push_back(b / a);
  }
  session.finish();
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  state.counters["pairs"] = double(ratios.size());
  state.counters["plain_us_per_step"] = median(plain_us);
  state.counters["tracked_us_per_step"] = median(tracked_us);
  state.counters["overhead_pct_median"] = 100.0 * (median(ratios) - 1.0);
}
BENCHMARK(BM_tiny_step_paired)->Iterations(101)->Unit(benchmark::kMillisecond);

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The process-memory component alone, driven at 10 Hz by this thread (the sampler's work per
// tick: pread statm + parse), plus its cost per sample.
void BM_process_memory_sample(benchmark::State& state) {
  trainmeter::detail::RunContext ctx;
  auto c = trainmeter::detail::make_process_memory_component(ctx);
  c->start(0);
  std::int64_t t = 0;
  for (auto _ : state) c->sample(++t);
}
BENCHMARK(BM_process_memory_sample);

// A whole idle Session sampling at 10 Hz (collector + every built-in component) for 3 s: CPU
// time of the process over wall time, in % of one core.
void BM_session_idle_10hz(benchmark::State& state) {
  for (auto _ : state) {
    trainmeter::Session session(bench_config());
    const double c0 = process_cpu_s();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const double c1 = process_cpu_s();
    session.finish();
    state.counters["cpu_pct_of_core"] = 100.0 * (c1 - c0) / 3.0;
  }
}
BENCHMARK(BM_session_idle_10hz)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
