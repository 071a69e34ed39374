// Differencing of cumulative energy counters (RAPL energy_uj, perf power events, NVML total
// energy): wraparound, resets and implausible jumps.
#pragma once

#include <cstdint>

namespace trainmeter::detail {

/// What one new reading of a counter means.
enum class CounterStep {
  kFirst,       ///< first reading: nothing to difference yet
  kOk,          ///< `delta` holds the raw increase (wraparound already folded in)
  kWrapped,     ///< as kOk, and the counter wrapped once during the interval
  kBackwards,   ///< went down with no known wrap range: a reset; interval discarded
  kImplausible  ///< increase above the physical limit for the interval; interval discarded
};

/// Tracks one cumulative counter. Raw units are the source's (µJ for RAPL, mJ for NVML, perf
/// event counts); `joules_per_unit` converts. Not thread-safe: one sampler thread owns it.
class CounterTracker {
 public:
  /// `wrap_range`: the value at which the counter wraps to 0 (RAPL max_energy_range_uj + 1 in
  /// effect), 0 when it never wraps or the range is unknown. `max_power_w`: above this average
  /// power over an interval a delta is treated as a glitch.
  CounterTracker(double joules_per_unit = 1e-6, std::uint64_t wrap_range = 0,
                 double max_power_w = 5000.0) noexcept
      : joules_per_unit_(joules_per_unit), wrap_range_(wrap_range), max_power_w_(max_power_w) {}

  /// Feeds a reading taken at `now_ns` (steady clock). After kOk/kWrapped, delta() and joules()
  /// describe the interval since the previous accepted reading.
  CounterStep update(std::uint64_t raw, std::int64_t now_ns) noexcept;

  std::uint64_t delta() const noexcept { return delta_; }
  double joules() const noexcept { return static_cast<double>(delta_) * joules_per_unit_; }
  bool has_reading() const noexcept { return has_last_; }
  std::uint64_t last() const noexcept { return last_; }
  double joules_per_unit() const noexcept { return joules_per_unit_; }
  std::uint64_t wrap_range() const noexcept { return wrap_range_; }
  std::uint64_t wraps() const noexcept { return wraps_; }

 private:
  double joules_per_unit_;
  std::uint64_t wrap_range_;
  double max_power_w_;
  bool has_last_ = false;
  std::uint64_t last_ = 0;
  std::int64_t last_ns_ = 0;
  std::uint64_t delta_ = 0;
  std::uint64_t wraps_ = 0;
};

}  // namespace trainmeter::detail
