#include "energy/counter.hpp"

namespace trainmeter::detail {

CounterStep CounterTracker::update(std::uint64_t raw, std::int64_t now_ns) noexcept {
  delta_ = 0;
  if (!has_last_) {
    has_last_ = true;
    last_ = raw;
    last_ns_ = now_ns;
    return CounterStep::kFirst;
  }
  bool wrapped = false;
  std::uint64_t d = 0;
  if (raw >= last_) {
    d = raw - last_;
  } else if (wrap_range_ > 0 && last_ < wrap_range_) {
    // RAPL counts 0..max_energy_range_uj and restarts at 0: one wrap adds the range. We sample
    // far more often than the fastest wrap (minutes at full power), so at most one can occur.
    d = (wrap_range_ - last_) + raw;
    wrapped = true;
  } else {
    last_ = raw;
    last_ns_ = now_ns;
    return CounterStep::kBackwards;
  }
  const double seconds = 1e-9 * static_cast<double>(now_ns - last_ns_);
  last_ = raw;
  last_ns_ = now_ns;
  // A glitch (a reset that happens to land above the last value, a driver reload, a counter
  // re-based) shows up as more energy than the hardware can draw in the interval.
  const double joules = static_cast<double>(d) * joules_per_unit_;
  if (seconds <= 0 ? d != 0 : joules > max_power_w_ * seconds) return CounterStep::kImplausible;
  delta_ = d;
  if (wrapped) ++wraps_;
  return wrapped ? CounterStep::kWrapped : CounterStep::kOk;
}

}  // namespace trainmeter::detail
