// Costs of the outputs module, all on the collector thread or at finish, never on the step path
// (docs/performance.md, section "outputs").
//
//   build/bin/bench_export --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/component.hpp"
#include "export/compare.hpp"
#include "export/exports.hpp"
#include "export/outputs.hpp"

namespace {

using trainmeter::detail::StepRecord;

std::string temp_path(const char* name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/trainmeter-bench-" + std::to_string(::getpid()) + "-" +
         name;
}

std::vector<StepRecord> records(std::size_t n) {
  std::vector<StepRecord> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    StepRecord& r = v[i];
    r.start_ns = 1'000'000'000 + std::int64_t(i) * 1'000'000;
    r.wall_ns = 987'654;
    r.cpu_ns = -1;
    r.peak_tensor_bytes = 123'456'789;
    r.loss = 0.25;
    for (double& m : r.metrics) m = std::nan("");
    r.samples = 64;
    r.tokens = 0;
    r.seq = i;
    r.phase = 0;
    r.thread = 0;
    r.flags = 0;
  }
  return v;
}

// Formatting and buffering one step line (nlohmann dump) on the collector thread; the flush
// interval is long, so no write happens inside the timed loop.
void BM_stream_format_step(benchmark::State& state) {
  trainmeter::detail::RunContext ctx;
  ctx.config.stream = temp_path("format.jsonl");
  ctx.config.flush_interval_ms = 3600000;
  ctx.config.progress = "off";
  ctx.start_ns = 1'000'000'000;
  ctx.phase_name = [](std::uint16_t) { return std::string("train"); };
  auto c = trainmeter::detail::make_outputs_component(ctx);
  c->start(ctx.start_ns);
  const auto batch = records(1024);
  for (auto _ : state) c->steps(batch.data(), batch.size());
  state.SetItemsProcessed(state.iterations() * 1024);
  c->stop(ctx.start_ns);
  ::unlink(ctx.config.stream.c_str());
}
BENCHMARK(BM_stream_format_step)->Unit(benchmark::kMicrosecond);

// One flush of ~1000 step lines (about 250 KB): write(2) alone, and write(2) + fdatasync.
void BM_stream_flush(benchmark::State& state) {
  const std::string path = temp_path("flush.jsonl");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  const std::string block(250 * 1024, 'x');
  for (auto _ : state) {
    if (::write(fd, block.data(), block.size()) < 0) state.SkipWithError("write failed");
    if (state.range(0) != 0) ::fdatasync(fd);
  }
  ::close(fd);
  ::unlink(path.c_str());
}
BENCHMARK(BM_stream_flush)->Arg(0)->Arg(1)->ArgNames({"fdatasync"})->Unit(benchmark::kMicrosecond);

// The bootstrap of compare: 2000 resamples of the median ratio of n steps per side.
void BM_compare_bootstrap(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<double> a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = 1e6 * (1 + 0.1 * std::sin(double(i)));
    b[i] = 0.9e6 * (1 + 0.1 * std::cos(double(i)));
  }
  trainmeter::detail::CompareOptions o;
  for (auto _ : state)
    benchmark::DoNotOptimize(trainmeter::detail::bootstrap_median_ratio(a, b, o));
}
BENCHMARK(BM_compare_bootstrap)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
