// Findings: ranked, evidence-backed advice computed from a finished report (issue 18). A pure
// function of the report document (torch-free; old reports work: an absent key is "no evidence,
// no finding"). Every threshold is a named constant below, documented in docs/findings.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "carbon/intensity.hpp"
#include "carbon/prices.hpp"

namespace trainmeter::detail {

// ---- Thresholds (docs/findings.md lists each with its rationale) ----

/// Input-bound: time between consecutive steps of a thread, as a share of the phase's wall time
/// (phases.<p>.between_steps.share_of_wall), at or above which a finding is made ...
inline constexpr double kInputBoundShare = 0.10;
/// ... and at or above which it is severity "high".
inline constexpr double kInputBoundHighShare = 0.25;

/// Under-used CPU threads: process CPU time / (wall time x logical CPUs) below this is flagged.
inline constexpr double kCpuUnderuseShare = 0.50;
/// The CPU rule needs at least this many logical CPUs (one CPU cannot be under-used by threads).
inline constexpr int kCpuMinLogicalCpus = 2;

/// GPU idle: device busy time over host step time (phases.<p>.gpu_busy_fraction, or NVML's mean
/// utilisation / 100) below this is flagged ...
inline constexpr double kGpuIdleShare = 0.50;
/// ... and below this it is severity "high".
inline constexpr double kGpuIdleHighShare = 0.25;

/// Step patterns (from steps[]) need at least this many steps of the phase.
inline constexpr int kPatternMinSteps = 20;
/// A step slower than this times the phase's median step is "slow" (periodic work, outlier).
inline constexpr double kSlowStepFactor = 2.0;
/// Periodic: at least this many slow steps ...
inline constexpr int kPeriodicMinSlowSteps = 3;
/// ... whose distances (in steps) agree on one period for at least this share of the distances.
inline constexpr double kPeriodAgreement = 0.8;
/// Slow steps (periodic or outliers) are reported when their time above the median is at least
/// this share of the phase's step time.
inline constexpr double kSlowStepMinShare = 0.05;
/// Bimodal: the largest ratio between consecutive sorted step times is at least this ...
inline constexpr double kBimodalGapRatio = 1.3;
/// ... and each side holds at least this share of the steps.
inline constexpr double kBimodalMinShare = 0.20;
/// Warm-up detection: the leading run of steps slower than this times the median.
inline constexpr double kWarmupSlowFactor = 1.5;

/// Lower precision: severity "medium" when the saving is at least this share of the peak tensor
/// bytes (else "low").
inline constexpr double kPrecisionMediumShare = 0.25;
/// GPU memory: reserved peak below this share of the device's memory is reported as headroom ...
inline constexpr double kGpuHeadroomUsedShare = 0.50;
/// ... and above this share as "near the device's capacity".
inline constexpr double kGpuNearFullShare = 0.95;

/// Carbon what-if: a cleaner region or start time is reported when it saves at least this share
/// of the run's CO2e ...
inline constexpr double kCarbonMinSaving = 0.20;
/// ... severity "medium" from this share on.
inline constexpr double kCarbonMediumSaving = 0.50;
/// How many of the cleanest candidates the ranking lists.
inline constexpr int kCarbonRankingSize = 5;

/// Cost what-if: a cheaper place for the same energy is reported when its price saves at least
/// this share of the run's energy cost (cost.energy) ...
inline constexpr double kCostMinSaving = 0.20;
/// ... severity "medium" from this share on (the saving is on the energy part of the cost only).
inline constexpr double kCostMediumSaving = 0.50;

/// Inputs besides the report.
/// One retained step as the step rules read it (the session passes its records this way instead
/// of a document of steps[]).
struct StepView {
  double index = 0;
  double wall_ns = 0;
  std::string_view phase;
  bool warmup = false;
};

struct FindingsOptions {
  /// Candidate places for the carbon what-if: "provider:region" or ISO country codes. Empty: the
  /// bundled cloud-region table (data/cloud_region_carbon_intensity.tsv).
  std::vector<std::string> regions;
  /// An intensity time series: the run's duration is placed at the cleanest window of it.
  std::optional<IntensitySeries> series;
  /// Candidate prices for the cost what-if. Empty: the bundled table
  /// (data/electricity_prices.tsv). Only candidates in the run's currency are compared.
  std::vector<ElectricityPrice> prices;
  /// The retained steps; nullptr: steps[] of the report.
  const std::vector<StepView>* steps = nullptr;
};

/// The report's `findings` section: {"items": [finding...], "not_checked": [{"rule", "reason"}]}.
/// Items are ranked by severity (high, medium, low, info), then by expected gain. Each finding:
/// {id, severity, scope ("run" or "phase:<name>"), title, evidence: [{key, value, unit}],
/// try: [text], expected_gain: {fraction, value, unit, method}}. Throws only on an out-of-memory
/// condition; any report shape is accepted.
nlohmann::json findings(const nlohmann::json& report, const FindingsOptions& options = {});

/// Writes report["findings"] = findings(report, options). Never throws: on failure it writes
/// {"items": [], "not_checked": [{"rule": "all", "reason": <what failed>}]}. Called by the
/// session at finish (before the report is written) and by `trainmeter advise`.
void add_findings(nlohmann::json& report, const FindingsOptions& options = {}) noexcept;

/// The report's own findings section when it has one, else findings(report). Never throws: a
/// failure gives {"items": [], "not_checked": [{"rule": "all", "reason": <what failed>}]}. What
/// summary, advise and the HTML page show.
nlohmann::json stored_or_computed_findings(const nlohmann::json& report) noexcept;

/// The per-epoch view of retained steps[]: epochs are marked by the program (a step metric
/// "epoch") or found from phase changes (the steps of the phase with the most steps, split where
/// a step of another phase comes between). One entry per epoch, in order: {epoch, phase,
/// first_index, steps, span_s (first start to last end), step_time_s (summed wall), samples,
/// samples_per_s (samples / step_time_s), loss_last, loss_mean, energy_j (summed step energy;
/// null when a step has none)}. Empty when there are fewer than two epochs or no steps[].
nlohmann::json epoch_view(const nlohmann::json& report);

/// One evidence or gain value as a person reads it, in adaptive units (src/report/units.hpp) by
/// its unit ("ns", "s", "bytes", "fraction" as a percentage, "kg" as CO2e...); "n/a" for null.
std::string format_evidence_value(const nlohmann::json& value, const std::string& unit);

/// Plain text of a findings section (for `advise` and `summary`): one numbered block per
/// finding, evidence with units; "no findings" when there are none.
std::string render_findings(const nlohmann::json& findings_section);

}  // namespace trainmeter::detail
