// The report step of finish() at scale: step records serialised per second (StepWriter, the
// streamed steps[]) against the nlohmann DOM path it replaced, and the whole write_run_report
// with 100,000 retained steps (temp file + rename, the energy and carbon components' per-step
// columns included).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/component.hpp"
#include "core/session_impl.hpp"
#include "report/builder.hpp"
#include "report/json_io.hpp"
#include "report/step_json.hpp"

using namespace trainmeter;
using namespace trainmeter::detail;

namespace {

std::vector<StepRecord> make_records(std::size_t n) {
  std::vector<StepRecord> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    StepRecord& r = out[i];
    r = StepRecord{};
    r.seq = i;
    r.phase = static_cast<std::uint16_t>(i % 10 == 9 ? 1 : 0);
    r.thread = 0;
    r.start_ns = 1'000'000 + std::int64_t(i) * 60'000;
    r.wall_ns = 50'000 + std::int64_t(i % 7) * 1'000;
    r.cpu_ns = -1;
    r.peak_tensor_bytes = 1 << 20;
    r.loss = 2.0 / double(i + 1);
    for (double& m : r.metrics) m = std::nan("");
    r.metrics[0] = 0.5 + 1e-6 * double(i);
    r.samples = 32;
    r.gpu_ns = -1;
    r.cuda_peak_tensor_bytes = -1;
    r.cuda_device = -1;
    r.gpu_slot = kNoGpuSlot;
  }
  return out;
}

// Steps per second through the streaming writer, with one number column (energy_j).
void BM_step_writer(benchmark::State& state) {
  const auto records = make_records(100'000);
  StepTable table(records.size());
  auto& energy = table.numbers("energy_j", StepTable::Unset::kNull);
  for (std::size_t i = 0; i < records.size(); ++i) energy[i] = 0.001 * double(i % 1000);
  const StepWriter writer(0, {"train", "eval"}, {"lr"}, &table);
  std::string out;
  out.reserve(64 << 10);
  std::size_t i = 0;
  for (auto _ : state) {
    writer.append(out, records[i], i);
    if (out.size() > (32 << 10)) out.clear();
    if (++i == records.size()) i = 0;
  }
  benchmark::DoNotOptimize(out.data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_step_writer);

// The path it replaced: one nlohmann object per step (step_json), then dump().
void BM_step_dom(benchmark::State& state) {
  const auto records = make_records(100'000);
  const std::vector<std::string> metrics = {"lr"};
  std::size_t i = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    nlohmann::json s = step_json(records[i], 0, "train", metrics);
    s["energy_j"] = 0.001 * double(i % 1000);
    bytes += s.dump().size();
    if (++i == records.size()) i = 0;
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_step_dom);

// write_run_report with 100,000 retained steps: the builder, the built-in components' sections
// and columns (no energy source, so energy_j is null), the streamed file.
void BM_write_run_report_100k(benchmark::State& state) {
  RunContext ctx;
  ctx.config.proc_root = "/nonexistent";
  ctx.config.powercap_root = "/nonexistent";
  ctx.config.perf_event_root = "/nonexistent";
  ctx.config.nvml_library = "/nonexistent/libnvml.so";
  ctx.config.progress = "off";
  ctx.config.run_id = "bench";
  ctx.config.run_name = "bench";
  char dir[] = "/tmp/trainmeter-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  ctx.report_path = std::string(dir) + "/report.json";
  ctx.start_ns = 0;
  ctx.start_unix_ns = 1'764'547'200'000'000'000;
  ctx.phase_name = [](std::uint16_t id) { return std::string(id == 0 ? "train" : "eval"); };
  ctx.steps_collected = [] { return std::uint64_t{100'000}; };
  auto components = make_builtin_components(ctx);
  for (auto& c : components) c->start(0);
  RunState run;
  run.records = make_records(100'000);
  run.phases.resize(2);
  run.phases[0].name = "train";
  run.phases[1].name = "eval";
  for (const StepRecord& r : run.records) {
    PhaseAggregate& p = run.phases[r.phase];
    ++p.steps;
    p.wall.add(double(r.wall_ns));
    p.wall_sketch.add(double(r.wall_ns));
    p.wall_sum_ns += double(r.wall_ns);
    ++p.retained;
  }
  run.metric_names = {"lr"};
  run.steps_recorded = run.records.size();
  run.end_ns = run.records.back().start_ns + run.records.back().wall_ns;
  for (auto& c : components) c->stop(run.end_ns);
  std::size_t bytes = 0;
  for (auto _ : state) {
    Report out;
    write_run_report(ctx, run, components, &out);
    bytes = out.json.size();
    if (!out.written) state.SkipWithError("report not written");
  }
  state.counters["report_json_bytes_in_memory"] = double(bytes);
  state.SetItemsProcessed(state.iterations() * std::int64_t(run.records.size()));
  std::remove(ctx.report_path.c_str());
  ::rmdir(dir);
}
BENCHMARK(BM_write_run_report_100k)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
