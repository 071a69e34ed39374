// trainmeter: the summary returned by Session::finish(). The full report is the JSON document
// (schema: docs/report.schema.json); these structs carry the figures most programs print.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

/// Step-time statistics of one phase, in nanoseconds, warm-up steps excluded.
struct StepTimeStats {
  double mean_ns = 0;
  double stddev_ns = 0;  ///< sample standard deviation (n - 1)
  std::int64_t min_ns = 0;
  std::int64_t p50_ns = 0;
  std::int64_t p90_ns = 0;
  std::int64_t p95_ns = 0;
  std::int64_t p99_ns = 0;
  std::int64_t max_ns = 0;
  /// true: percentiles from every retained step; false: from the sketch (relative error <= 1%).
  bool percentiles_exact = true;
};

struct PhaseSummary {
  std::string name;
  std::uint64_t steps = 0;         ///< recorded steps, warm-up included
  std::uint64_t warmup_steps = 0;  ///< of which warm-up
  std::uint64_t samples = 0;       ///< summed over non-warm-up steps
  std::uint64_t tokens = 0;
  double duration_s = 0;                   ///< summed wall time of non-warm-up steps
  std::optional<StepTimeStats> step_time;  ///< empty when no step counted
  std::optional<double> samples_per_s;
  std::optional<double> tokens_per_s;
};

struct Report {
  std::string path;  ///< where the report was written ("" when not written)
  /// true: the session was disabled (Config::enabled false, TRAINMETER_ENABLED=0): nothing was
  /// measured and no report written, by request; not an error. `written` is then false too.
  bool disabled = false;
  /// true: the report file was written. false with `disabled` false: writing failed (the reason
  /// is in the diagnostics of `json` and was logged).
  bool written = false;
  std::string status;  ///< "completed" | "aborted" | "crashed"; "disabled" when disabled
  std::uint64_t steps_recorded = 0;
  std::uint64_t steps_dropped = 0;  ///< lost to a full ring or recorded after finish()
  std::vector<PhaseSummary> phases;
  std::optional<double> energy_j;  ///< attributed energy, when any source measured or estimated
  std::optional<double> co2e_kg;
  /// The whole report document. A report of more than 20,000 retained steps (or over 8 MiB) is
  /// kept on disk only: `json` then holds every section but with `steps` empty, and
  /// `json_steps_omitted` is true (read the file at `path` for the steps).
  std::string json;
  bool json_steps_omitted = false;

  const PhaseSummary* phase(std::string_view name) const noexcept {
    for (const auto& p : phases)
      if (p.name == name) return &p;
    return nullptr;
  }
};

/// A few human-readable lines: step-time percentiles, throughput, peak memory, energy, carbon,
/// cost and diagnostics (what `trainmeter summary` prints).
TRAINMETER_EXPORT std::string format_summary(const Report& report);

TRAINMETER_END_NAMESPACE
