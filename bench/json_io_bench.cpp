// The streaming readers of a report's steps[] (report/json_io): what `trainmeter merge`,
// `export trace` and `export csv/prom` pay to read a long report without a DOM of its steps
// (docs/performance.md, "merge and export trace on 100,000-step reports").
//
//   build/bin/bench_json_io --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "export/merge.hpp"
#include "report/json_io.hpp"

namespace {

using nlohmann::json;

std::string temp_path(const char* name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/trainmeter-bench-" + std::to_string(::getpid()) + "-" +
         name;
}

// A report of `n` steps with the keys a session writes for a CPU run with energy (about 250 bytes
// a step as dump_report() writes it), and small sections.
std::string write_report_file(std::size_t n) {
  json report = {{"schema_version", 1},
                 {"run", {{"name", "bench"}, {"rank", 0}, {"world_size", 1}}},
                 {"phases", {{"train", {{"steps", n}}}}},
                 {"diagnostics", json::array()}};
  json steps = json::array();
  for (std::size_t i = 0; i < n; ++i)
    steps.push_back({{"index", i},
                     {"phase", "train"},
                     {"thread", 0},
                     {"start_offset_ns", 1'000'000 * i},
                     {"wall_ns", 987'654 + std::int64_t(i % 1000)},
                     {"cpu_ns", 950'000},
                     {"samples", 64},
                     {"tokens", 0},
                     {"warmup", i == 0},
                     {"loss", 0.25 + 1e-6 * double(i)},
                     {"peak_tensor_bytes", 123'456'789},
                     {"energy_j", 0.0123}});
  report["steps"] = std::move(steps);
  const std::string path = temp_path("steps.json");
  trainmeter::detail::write_file_atomic(path, trainmeter::detail::dump_report(report));
  return path;
}

// Every step of the file parsed and handed to a visitor, the sections dropped (the second pass of
// `export trace`).
void BM_for_each_step(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string path = write_report_file(n);
  std::size_t seen = 0;
  for (auto _ : state) {
    const std::string error =
        trainmeter::detail::for_each_step(path, [&](const json& s, std::size_t) {
          benchmark::DoNotOptimize(&s);
          ++seen;
        });
    if (!error.empty()) state.SkipWithError(error.c_str());
  }
  std::remove(path.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(seen));
  state.counters["steps"] = double(n);
}
BENCHMARK(BM_for_each_step)->Arg(100'000)->Unit(benchmark::kMillisecond);

// The sections kept and each step reduced to the compact fields merge encodes (what
// `trainmeter merge` does with each rank's file).
void BM_load_sections_compact_steps(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string path = write_report_file(n);
  std::size_t seen = 0;
  for (auto _ : state) {
    trainmeter::detail::LocalSteps steps;
    auto loaded = trainmeter::detail::load_report_sections(
        path, nullptr, [&](const json& s, std::size_t) { steps.add(s); });
    if (!loaded.value) state.SkipWithError(loaded.error.c_str());
    seen += steps.elements();
    benchmark::DoNotOptimize(loaded);
  }
  std::remove(path.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(seen));
}
BENCHMARK(BM_load_sections_compact_steps)->Arg(100'000)->Unit(benchmark::kMillisecond);

// The floor: the whole file parsed into one document (what merge and export trace did before).
void BM_load_whole_document(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string path = write_report_file(n);
  for (auto _ : state) {
    auto loaded = trainmeter::detail::load_json_file(path);
    if (!loaded.value) state.SkipWithError(loaded.error.c_str());
    benchmark::DoNotOptimize(loaded);
  }
  std::remove(path.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_load_whole_document)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
BENCHMARK_MAIN();
