// "Did my change help?": ratios B/A between two reports and a bootstrap confidence interval of
// the median step-time ratio.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

struct CompareOptions {
  std::string phase;                   ///< "" = "train" when present, else the largest phase
  int resamples = 2000;                ///< bootstrap resamples
  double confidence = 0.95;            ///< two-sided interval
  std::uint64_t seed = 0x7261696eULL;  ///< fixed: the same inputs give the same interval
};

/// The comparison as JSON: {"phase", "metrics": {name: {"a", "b", "ratio", "unit",
/// "better"}}, "step_time": {"median_ratio", "ci_low", "ci_high", "confidence", "resamples",
/// "steps_a", "steps_b", "verdict", "significant", "speedup"}}. A ratio is null when either side
/// lacks the figure. The CI is null when either report retains no steps of the phase.
nlohmann::json compare_reports(const nlohmann::json& a, const nlohmann::json& b,
                               const CompareOptions& options = {});

/// Percentile bootstrap of median(b) / median(a): resamples both sides with replacement.
/// Returns {low, high}; nullopt when either side is empty or a median is 0.
std::optional<std::pair<double, double>> bootstrap_median_ratio(const std::vector<double>& a,
                                                                const std::vector<double>& b,
                                                                const CompareOptions& options);

/// Median by linear interpolation (the report's p50 definition).
double median_of(std::vector<double> values);

/// Human text of a comparison (one line per metric and the verdict).
std::string render_comparison(const nlohmann::json& comparison);

}  // namespace trainmeter::detail
