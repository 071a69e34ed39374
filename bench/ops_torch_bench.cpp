// Peer comparison: what trainmeter and libtorch's own profiler add to a training step.
//
//   OMP_NUM_THREADS=1 build/bin/bench_ops_torch --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
//
// Workloads: tiny (Linear 64->64, batch 32) and medium (Linear 1024->1024, batch 256) SGD steps
// (zero_grad, forward, MSE loss, backward, optimizer step). Variants:
//   none                 the bare step
//   trainmeter_default   Session step scope + tensor-memory tracking (ops off, the default)
//   trainmeter_ops       the same with op accounting on every step (ops_every=1, no warm-up)
//   profiler_cpu         libtorch's kineto profiler, CPU activities
//   profiler_shapes      ... with record_shapes
//   profiler_memory      ... with profile_memory
//   profiler_shapes_memory
//   noop_callback(_inputs) a do-nothing RecordFunction callback (with boxed inputs): libtorch's
//                        share of the per-op cost
// The profilers are restarted every kProfilerWindow steps outside the timed region, so event
// buffers stay bounded as they would with a profiler schedule. Counter ops_per_step: RecordFunction
// ops (aten ops and autograd nodes) per step, to turn added time into time per op.
// Also: the cost of adding and removing the thread-local callback (paid once per accounted step).
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include <ATen/record_function.h>

#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"
#include "trainmeter/torch_ops.hpp"

namespace {

constexpr int kProfilerWindow = 200;

struct Workload {
  Workload(int features, int batch)
      : lin(features, features),
        opt(lin->parameters(), torch::optim::SGDOptions(0.01)),
        x(torch::randn({batch, features})),
        y(torch::randn({batch, features})) {}
  void step() {
    opt.zero_grad();
    auto loss = torch::mse_loss(lin->forward(x), y);
    loss.backward();
    opt.step();
  }
  torch::nn::Linear lin;
  torch::optim::SGD opt;
  torch::Tensor x, y;
};

int features_of(const benchmark::State& s) {
  return s.range(0) == 0 ? 64 : 1024;
}
int batch_of(const benchmark::State& s) {
  return s.range(0) == 0 ? 32 : 256;
}
const char* label_of(const benchmark::State& s) {
  return s.range(0) == 0 ? "tiny" : "medium";
}

std::unique_ptr<at::ObserverContext> noop_start(const at::RecordFunction&) {
  return nullptr;
}
void noop_end(const at::RecordFunction&, at::ObserverContext*) {}

thread_local std::uint64_t tls_counted_ops = 0;
std::unique_ptr<at::ObserverContext> count_op(const at::RecordFunction&) {
  ++tls_counted_ops;
  return nullptr;
}

// RecordFunction ops in one step of the workload (FUNCTION and BACKWARD_FUNCTION scopes, what op
// accounting and the profiler observe).
double ops_per_step(Workload& w) {
  auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(&count_op).scopes(
      {at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  tls_counted_ops = 0;
  for (int i = 0; i < 10; ++i) w.step();
  at::removeCallback(handle);
  return double(tls_counted_ops) / 10.0;
}

void finish_counters(benchmark::State& state, Workload& w) {
  state.counters["ops_per_step"] = ops_per_step(w);
  state.SetLabel(label_of(state));
}

void BM_step_none(benchmark::State& state) {
  Workload w(features_of(state), batch_of(state));
  for (auto _ : state) w.step();
  finish_counters(state, w);
}

trainmeter::Config bench_config(const char* name) {
  trainmeter::Config c;
  c.run_name = name;
  c.output = std::string("/tmp/trainmeter_bench_ops/") + name + ".json";
  c.progress = "off";
  return c;
}

void BM_step_trainmeter_default(benchmark::State& state) {
  Workload w(features_of(state), batch_of(state));
  trainmeter::Session session(bench_config("default"));
  auto memory = trainmeter::torch::track_memory(session);
  for (auto _ : state) {
    auto step = session.step(static_cast<std::uint64_t>(batch_of(state)));
    w.step();
  }
  memory.reset();
  session.finish();
  finish_counters(state, w);
}

void BM_step_trainmeter_ops(benchmark::State& state) {
  Workload w(features_of(state), batch_of(state));
  trainmeter::Config c = bench_config("ops");
  c.ops = true;
  c.ops_every = 1;
  c.warmup_steps = 0;
  trainmeter::Session session(c);
  auto memory = trainmeter::torch::track_memory(session);
  auto ops = trainmeter::torch::account_ops(session);
  if (!ops.active()) state.SkipWithError("op accounting did not start");
  for (auto _ : state) {
    auto step = session.step(static_cast<std::uint64_t>(batch_of(state)));
    w.step();
  }
  ops.reset();
  memory.reset();
  session.finish();
  finish_counters(state, w);
}

void profiled(benchmark::State& state, bool shapes, bool memory) {
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  Workload w(features_of(state), batch_of(state));
  const ProfilerConfig config(ProfilerState::KINETO, shapes, memory);
  try {
    prof::prepareProfiler(config, {ActivityType::CPU});
    prof::enableProfiler(config, {ActivityType::CPU});
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  int in_window = 0;
  for (auto _ : state) {
    w.step();
    if (++in_window == kProfilerWindow) {
      state.PauseTiming();
      prof::disableProfiler();
      prof::prepareProfiler(config, {ActivityType::CPU});  // 2.x: required before each enable
      prof::enableProfiler(config, {ActivityType::CPU});
      in_window = 0;
      state.ResumeTiming();
    }
  }
  prof::disableProfiler();
  finish_counters(state, w);
}

void BM_step_profiler_cpu(benchmark::State& state) {
  profiled(state, false, false);
}
void BM_step_profiler_shapes(benchmark::State& state) {
  profiled(state, true, false);
}
void BM_step_profiler_memory(benchmark::State& state) {
  profiled(state, false, true);
}
void BM_step_profiler_shapes_memory(benchmark::State& state) {
  profiled(state, true, true);
}

// A do-nothing callback installed like op accounting's, with and without boxed inputs: splits
// op accounting's per-op cost into libtorch's share (boxing every op's arguments, running the
// callback machinery) and trainmeter's own bookkeeping.
void noop_callback(benchmark::State& state, bool inputs) {
  Workload w(features_of(state), batch_of(state));
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&noop_start, &noop_end)
          .needsInputs(inputs)
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  for (auto _ : state) w.step();
  at::removeCallback(handle);
  finish_counters(state, w);
}
void BM_step_noop_callback(benchmark::State& state) {
  noop_callback(state, false);
}
void BM_step_noop_callback_inputs(benchmark::State& state) {
  noop_callback(state, true);
}

// What op accounting pays per accounted step to install and remove its callback.
void BM_callback_add_remove(benchmark::State& state) {
  const auto cb = at::RecordFunctionCallback(&noop_start, &noop_end)
                      .needsInputs(true)
                      .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION});
  for (auto _ : state) {
    auto handle = at::addThreadLocalCallback(cb);
    at::removeCallback(handle);
  }
}

}  // namespace

BENCHMARK(BM_step_none)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_trainmeter_default)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_trainmeter_ops)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_profiler_cpu)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_profiler_shapes)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_profiler_memory)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_profiler_shapes_memory)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);
BENCHMARK(BM_step_noop_callback)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_step_noop_callback_inputs)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);
BENCHMARK(BM_callback_add_remove)->Unit(benchmark::kNanosecond);

BENCHMARK_MAIN();
