// Streaming statistics for step times: exact moments (Welford) and a relative-error quantile
// sketch for when steps are no longer all retained.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace trainmeter::detail {

/// Count, mean, sample standard deviation, min and max in O(1) memory (Welford's algorithm:
/// numerically stable for long runs of nearly equal values, unlike sum/sum-of-squares).
class RunningStats {
 public:
  void add(double x) noexcept {
    ++n_;
    const double d = x - mean_;
    mean_ += d / double(n_);
    m2_ += d * (x - mean_);
    if (x < min_) min_ = x;
    if (x > max_) max_ = x;
  }
  std::uint64_t count() const noexcept { return n_; }
  double mean() const noexcept { return mean_; }
  /// Sample standard deviation (n - 1); 0 for fewer than two values.
  double stddev() const noexcept;
  double min() const noexcept { return min_; }
  double max() const noexcept { return max_; }

 private:
  std::uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

/// Logarithmic-bucket quantile sketch (the DDSketch construction): a value x > 0 lands in bucket
/// ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a), and a quantile is answered with the
/// bucket's midpoint 2 gamma^i / (gamma + 1), whose relative error is at most a. With a = 0.5%,
/// answers are within 0.5% of a true sample value of the requested rank. Memory grows with the
/// log of the value range (about 4,200 buckets from 1 ns to 1 day), never with the count.
class QuantileSketch {
 public:
  explicit QuantileSketch(double relative_accuracy = 0.005);
  void add(double x);
  std::uint64_t count() const noexcept { return count_; }
  /// The value of rank q * (count - 1) (q in [0, 1]); NaN when empty.
  double quantile(double q) const noexcept;
  double relative_accuracy() const noexcept { return alpha_; }

 private:
  int bucket_of(double x) const noexcept;
  double alpha_, gamma_, log_gamma_;
  std::uint64_t zero_count_ = 0;  // values <= 0 (zero-length steps)
  std::uint64_t count_ = 0;
  int offset_ = 0;  // bucket index of counts_[0]
  std::vector<std::uint64_t> counts_;
};

/// Exact quantile of `values` by linear interpolation between the closest ranks (the definition
/// numpy.percentile uses by default). Sorts `values` in place. NaN when empty.
double exact_quantile_sorted(const std::vector<double>& sorted, double q) noexcept;

}  // namespace trainmeter::detail
