// "Did my change help?": ratios B/A between two sides of one or more reports each, and a
// bootstrap confidence interval of the step-time ratio that accounts for the variance a single
// run hides: steps of one run are autocorrelated (a block bootstrap resamples contiguous blocks
// of steps, not single steps), and runs of the same program differ from each other (with several
// reports per side, the runs themselves are resampled). docs/compare.md has the method.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

struct CompareOptions {
  std::string phase;                   ///< "" = "train" when present, else the largest phase
  int resamples = 10000;               ///< bootstrap resamples
  double confidence = 0.95;            ///< two-sided interval
  std::uint64_t seed = 0x7261696eULL;  ///< fixed default: the same inputs give the same interval
  /// Steps per bootstrap block; 0 = automatic, ceil(sqrt(steps of the run)). 1 resamples single
  /// steps as if they were independent (what compare did before blocks; kept for the tests).
  std::size_t block_steps = 0;
};

/// One side's runs: per report, its non-warm-up step times (ns) of the phase in step order.
using SideSteps = std::vector<std::vector<double>>;

/// The comparison as JSON: {"phase", "runs_a", "runs_b", "metric_order", "metrics": {name: {"a",
/// "b", "ratio", "unit", "better"}}, "step_time": {"median_ratio", "ci_low", "ci_high",
/// "confidence", "resamples", "seed", "method", "block_steps_a", "block_steps_b", "tail",
/// "steps_a", "steps_b", "runs_a", "runs_b", "run_variance", "verdict", "significant",
/// "speedup"}}. With several reports on a side a metric is the mean over them, null unless
/// every report of the side has it; a ratio is null when either side lacks the figure. The CI is
/// null when a report of either side retains no steps of the phase. Throws std::invalid_argument
/// when a side is empty. (Not an overload of compare_reports: a braced list of reports would
/// silently become one JSON array.)
nlohmann::json compare_runs(const std::vector<nlohmann::json>& a,
                            const std::vector<nlohmann::json>& b,
                            const CompareOptions& options = {});
/// One report per side: compare_runs({a}, {b}).
nlohmann::json compare_reports(const nlohmann::json& a, const nlohmann::json& b,
                               const CompareOptions& options = {});

/// A side's step-time centre: the mean of its runs' median step times (one run: its median).
/// NaN when a run is empty.
double side_centre(const SideSteps& runs);

/// The steps per block the bootstrap uses for a run of `steps` steps (options.block_steps, else
/// ceil(sqrt(steps)); never more than `steps`, never 0 for a non-empty run).
std::size_t block_steps_for(std::size_t steps, const CompareOptions& options);

/// The lower tail probability of the percentile interval: (1 - confidence) / 2 with one run per
/// side; with several runs on a side, Hesterberg's expanded percentile interval (a percentile
/// bootstrap over few runs is too narrow): the tail at z = sqrt(k/(k-1)) x t(df) where k =
/// max(2, min(runs_a, runs_b)), t(df) the Student t quantile of the confidence with df = runs_a +
/// runs_b - 2.
double interval_tail(std::size_t runs_a, std::size_t runs_b, double confidence);

/// Quantile p (0 < p < 1) of Student's t distribution with df > 0 degrees of freedom.
double student_t_quantile(double p, double df);

/// Bootstrap of side_centre(b) / side_centre(a). Each resample draws, per side, as many runs as
/// the side has, with replacement (one run: always that run); each drawn run is rebuilt from
/// blocks of block_steps_for() contiguous steps with random starts (circular: a block may wrap
/// to the run's first steps), and its median taken. Returns the {low, high} percentile interval
/// at interval_tail(); nullopt when a run is empty, a centre is <= 0 or resamples < 10.
/// Deterministic for a given options.seed.
std::optional<std::pair<double, double>> bootstrap_ratio(const SideSteps& a, const SideSteps& b,
                                                         const CompareOptions& options);
/// One run per side.
std::optional<std::pair<double, double>> bootstrap_median_ratio(const std::vector<double>& a,
                                                                const std::vector<double>& b,
                                                                const CompareOptions& options);

/// The `--fail-if-slower PCT` gate on a comparison: failed when B's step time is more than PCT
/// percent above A's (ratio > 1 + PCT/100) and the verdict is a significant slowdown (the whole
/// interval above 1). Without an interval (no retained steps), only the reports' p50 ratio is
/// used. Adds comparison["gate"] = {"fail_if_slower_pct", "failed", "basis"} and returns failed;
/// nullopt (no "gate") when neither side has a step time of the phase.
std::optional<bool> apply_slower_gate(nlohmann::json& comparison, double pct);

/// Median by linear interpolation (the report's p50 definition).
double median_of(std::vector<double> values);

/// Human text of a comparison (one line per metric, the verdict, how it was reached).
std::string render_comparison(const nlohmann::json& comparison);
/// The comparison as GitHub-flavoured Markdown for a pull-request comment: a heading with the
/// verdict, a table of the metrics, the method; names and paths escaped.
std::string render_comparison_markdown(const nlohmann::json& comparison);

}  // namespace trainmeter::detail
