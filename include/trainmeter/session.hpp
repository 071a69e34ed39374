// trainmeter: a measured run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "trainmeter/config.hpp"
#include "trainmeter/report.hpp"
#include "trainmeter/step.hpp"
#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

namespace detail {
class SessionImpl;
}

/// One measured run. Construction validates the configuration (throwing Error with every
/// problem), prepares the output directory and starts recording: the background collector and
/// samplers run from here until finish(). After construction nothing in trainmeter throws;
/// failures become counted entries in the report's `diagnostics`.
///
/// Thread-safety: step(), phase(), metric() may be called from any number of threads at once.
/// finish() may be called from any thread, more than once; the destructor calls it.
class TRAINMETER_EXPORT Session {
 public:
  explicit Session(Config config = Config::from_env());
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Times one step of phase "train". `samples` (the batch size; 0 when unknown) may be of any
  /// integer type, e.g. libtorch's int64_t `batch.data.size(0)`; a negative count becomes 0.
  StepScope step() noexcept { return StepScope(hot_, Phase{0}, 0); }
  template <class N>
  StepScope step(N samples) noexcept {
    return StepScope(hot_, Phase{0}, detail::to_samples(samples));
  }
  template <class N>
  StepScope step(N samples, Phase phase) noexcept {
    return StepScope(hot_, phase, detail::to_samples(samples));
  }
  /// Times one step of the named phase. The first use of a name interns it (a short lock, once).
  template <class N>
  StepScope step(N samples, const char* phase_name) noexcept {
    return StepScope(hot_, phase(phase_name), detail::to_samples(samples));
  }

  /// Interns a phase name (at most kMaxPhases; further names are counted under the last phase
  /// interned, with a diagnostic).
  Phase phase(const char* name) noexcept;
  /// Interns a metric column (at most kMaxMetrics; further names get an invalid id).
  MetricId metric(const char* name) noexcept;
  /// Adds a label to run.tags (before finish()).
  void tag(const std::string& key, const std::string& value) noexcept;
  /// Steps expected in the whole run (progress ETA; forecast).
  void set_total_steps(std::uint64_t steps) noexcept;

  /// Stops recording, drains every ring, computes statistics, writes the report (temp file then
  /// rename) and any configured exports. Idempotent: later calls return the same report.
  Report finish() noexcept;
  /// Marks the run "aborted" (e.g. after a signal); finish() still writes the report.
  void abort() noexcept;

  bool enabled() const noexcept { return hot_ != nullptr; }
  const Config& config() const noexcept;

  /// Internal: integrations (trainmeter::torch) reach the implementation through this.
  detail::SessionImpl* impl() noexcept { return impl_.get(); }

 private:
  std::unique_ptr<detail::SessionImpl> impl_;
  detail::HotState* hot_ = nullptr;  // nullptr when disabled
};

TRAINMETER_END_NAMESPACE
