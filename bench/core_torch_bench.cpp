// trainmeter's overhead on real libtorch training steps, measured paired and interleaved in one
// process: blocks of steps with and without a step scope alternate, and the per-pair ratio's
// median and quartiles are reported (docs/performance.md). One intra-op thread, OpenBLAS.
//
//   build/bin/bench_core_torch
#include <benchmark/benchmark.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include <trainmeter/trainmeter.hpp>

namespace {

struct StepModel {
  StepModel(int width, int batch)
      : linear(width, width), opt(linear->parameters(), torch::optim::SGDOptions(0.01)),
        x(torch::randn({batch, width})), y(torch::randn({batch, width})) {}
  void step() {
    opt.zero_grad();
    auto loss = torch::mse_loss(linear->forward(x), y);
    loss.backward();
    opt.step();
  }
  torch::nn::Linear linear;
  torch::optim::SGD opt;
  torch::Tensor x, y;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * double(v.size() - 1))];
}

// args: width, batch, steps per block, pairs
void BM_paired_overhead(benchmark::State& state) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  const int width = static_cast<int>(state.range(0)), batch = static_cast<int>(state.range(1));
  const int block = static_cast<int>(state.range(2)), pairs = static_cast<int>(state.range(3));
  StepModel model(width, batch);
  trainmeter::Config c;
  c.run_name = "bench_core_torch";
  c.output = "/tmp/trainmeter-bench/core_torch.json";
  c.max_retained_steps = 1000;
  c.energy_sources = {"estimate"};
  trainmeter::Session session(c);
  for (int i = 0; i < 20; ++i) model.step();  // warm caches and the allocator
  std::vector<double> ratios, deltas_ns, base_ns;
  for (auto _ : state) {
    ratios.clear();
    deltas_ns.clear();
    base_ns.clear();
    for (int p = 0; p < pairs; ++p) {
      // Alternate which variant goes first so drift affects both equally.
      double plain = 0, scoped = 0;
      for (int order = 0; order < 2; ++order) {
        const bool scoped_now = (order == 0) == (p % 2 == 0);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < block; ++i) {
          if (scoped_now) {
            auto step = session.step(static_cast<std::uint64_t>(batch));
            model.step();
          } else {
            model.step();
          }
        }
        (scoped_now ? scoped : plain) = seconds_since(t0);
      }
      ratios.push_back(scoped / plain);
      deltas_ns.push_back((scoped - plain) / block * 1e9);
      base_ns.push_back(plain / block * 1e9);
    }
  }
  session.finish();
  state.counters["base_step_us"] = quantile(base_ns, 0.5) / 1e3;
  state.counters["overhead_pct_p50"] = (quantile(ratios, 0.5) - 1) * 100;
  state.counters["overhead_pct_p25"] = (quantile(ratios, 0.25) - 1) * 100;
  state.counters["overhead_pct_p75"] = (quantile(ratios, 0.75) - 1) * 100;
  state.counters["delta_ns_p50"] = quantile(deltas_ns, 0.5);
}
// Tiny: Linear 64->64, batch 32; medium: Linear 1024->1024, batch 256.
BENCHMARK(BM_paired_overhead)->Name("BM_paired_overhead/tiny")->Args({64, 32, 200, 101})->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_paired_overhead)->Name("BM_paired_overhead/medium")->Args({1024, 256, 4, 31})->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
