// The carbon component's only work happens once, at finish(): these measure it on the largest
// inputs a run produces (100,000 retained steps with energy, a year of hourly intensities), to
// show it adds nothing noticeable to finish() and nothing at all to steps.
#include <benchmark/benchmark.h>

#include <string>

#include <fmt/format.h>

#include "carbon/settings.hpp"

using namespace trainmeter::detail;

namespace {

constexpr std::int64_t kSec = 1000000000;
constexpr std::int64_t kStart = (20785LL * 86400 + 36000) * kSec;  // 2026-11-28T10:00:00Z

IntensitySeries hourly_year() {
  IntensitySeries s;
  s.file = "year.csv";
  for (int h = 0; h < 24 * 365; ++h) {
    s.samples.push_back({kStart - 24 * 3600 * kSec + h * 3600 * kSec, 100.0 + (h % 24) * 20.0});
  }
  return s;
}

// `n` steps of 0.5 s with 50 J each, back to back, in a run of n * 0.5 s.
nlohmann::json report_with_steps(int n) {
  nlohmann::json r;
  r["run"] = {{"start_utc", "2026-11-28T10:00:00.000Z"}, {"duration_s", n * 0.5}};
  r["energy"] = {{"total_j", n * 60.0}, {"total_kwh", n * 60.0 / 3.6e6}};
  nlohmann::json steps = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    steps.push_back({{"index", i},
                     {"start_offset_ns", std::int64_t(i) * kSec / 2},
                     {"wall_ns", kSec / 2},
                     {"energy_j", 50.0}});
  }
  r["steps"] = std::move(steps);
  return r;
}

void BM_ApplyCarbon_Country(benchmark::State& state) {
  CarbonSettings s;
  s.intensity = intensity_from_country("FR", "country");
  s.price_per_hour = 2.0;
  nlohmann::json report = report_with_steps(0);
  for (auto _ : state) {
    apply_carbon(report, s, kStart, nullptr);
    benchmark::DoNotOptimize(report);
  }
}
BENCHMARK(BM_ApplyCarbon_Country);

void BM_ApplyCarbon_TimeSeriesSteps(benchmark::State& state) {
  CarbonSettings s;
  s.intensity = intensity_from_series(hourly_year());
  nlohmann::json report = report_with_steps(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    apply_carbon(report, s, kStart, nullptr);
    benchmark::DoNotOptimize(report);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ApplyCarbon_TimeSeriesSteps)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_ParseSeries_Year(benchmark::State& state) {
  std::string csv = "timestamp_utc,g_per_kwh\n";
  for (const auto& p : hourly_year().samples)
    csv += fmt::format("{},{}\n", format_utc(p.unix_ns), p.g_per_kwh);
  for (auto _ : state) benchmark::DoNotOptimize(parse_intensity_series(csv, "year.csv"));
  state.SetItemsProcessed(state.iterations() * 24 * 365);
}
BENCHMARK(BM_ParseSeries_Year)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
