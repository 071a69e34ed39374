#include "base/stats.hpp"

#include <algorithm>
#include <cmath>

namespace trainmeter::detail {

double RunningStats::stddev() const noexcept {
  return n_ < 2 ? 0.0 : std::sqrt(m2_ / double(n_ - 1));
}

QuantileSketch::QuantileSketch(double relative_accuracy)
    : alpha_(relative_accuracy),
      gamma_((1 + relative_accuracy) / (1 - relative_accuracy)),
      log_gamma_(std::log(gamma_)) {}

int QuantileSketch::bucket_of(double x) const noexcept {
  return static_cast<int>(std::ceil(std::log(x) / log_gamma_));
}

void QuantileSketch::add(double x) {
  ++count_;
  if (!(x > 0)) {
    ++zero_count_;
    return;
  }
  const int b = bucket_of(x);
  if (counts_.empty()) {
    offset_ = b;
    counts_.assign(1, 0);
  } else if (b < offset_) {
    counts_.insert(counts_.begin(), static_cast<std::size_t>(offset_ - b), 0);
    offset_ = b;
  } else if (b - offset_ >= static_cast<int>(counts_.size())) {
    counts_.resize(static_cast<std::size_t>(b - offset_ + 1), 0);
  }
  ++counts_[static_cast<std::size_t>(b - offset_)];
}

double QuantileSketch::quantile(double q) const noexcept {
  if (count_ == 0) return std::nan("");
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<std::uint64_t>(std::floor(q * double(count_ - 1)));
  if (rank < zero_count_) return 0.0;
  std::uint64_t seen = zero_count_;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen > rank) {
      const int b = offset_ + static_cast<int>(i);
      return 2.0 * std::pow(gamma_, b) / (gamma_ + 1.0);
    }
  }
  return 2.0 * std::pow(gamma_, offset_ + static_cast<int>(counts_.size()) - 1) / (gamma_ + 1.0);
}

double exact_quantile_sorted(const std::vector<double>& sorted, double q) noexcept {
  if (sorted.empty()) return std::nan("");
  q = std::clamp(q, 0.0, 1.0);
  const double pos = q * double(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - double(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace trainmeter::detail
