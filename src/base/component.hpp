// The internal plug-in point: everything that samples in the background or fills a report
// section is a Component owned by the session and driven from the collector thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/diagnostics.hpp"
#include "base/live.hpp"
#include "base/step_source.hpp"
#include "base/step_table.hpp"
#include "trainmeter/config.hpp"
#include "trainmeter/step.hpp"

namespace trainmeter::detail {

/// Facts about the run that components read. Lives as long as the session.
struct RunContext {
  Config config;                   ///< effective configuration (defaults resolved)
  std::string report_path;         ///< resolved report path
  std::int64_t start_ns = 0;       ///< steady clock at start
  std::int64_t start_unix_ns = 0;  ///< system clock at start (ns since the Unix epoch)
  Diagnostics diagnostics;
  /// Figures the measuring components publish while the run goes on (base/live.hpp).
  LiveState live;
  /// Name of a phase id; thread-safe, any thread. Set by the session.
  std::function<std::string(std::uint16_t)> phase_name;
  /// Steps the collector has processed so far; thread-safe. Set by the session.
  std::function<std::uint64_t()> steps_collected;
  /// steady-clock ns -> seconds since the run started
  double rel_s(std::int64_t steady_ns) const noexcept {
    return 1e-9 * double(steady_ns - start_ns);
  }
};

/// A step as the collector hands it on: the record with its global index assigned (drain order;
/// each thread's own order preserved) and `flags` bit kStepWarmup set for warm-up steps.
inline constexpr std::uint32_t kStepWarmup = 1u << 0;
inline constexpr std::uint32_t kStepOpsAccounted = 1u << 1;

/// Life cycle, all on the collector thread except step_columns()/contribute()/after_write(),
/// which run on the thread that calls finish(), after the collector has stopped:
///   start() once; then every interval: steps() with newly drained records, sample();
///   stop() once after the final drain; step_columns() to add per-step values; contribute() to
///   fill report sections; after_write().
/// Every method is noexcept: failures go to ctx.diagnostics.
class Component {
 public:
  virtual ~Component() = default;
  virtual const char* name() const noexcept = 0;
  virtual void start(std::int64_t /*now_ns*/) noexcept {}
  virtual void steps(const StepRecord* /*records*/, std::size_t /*n*/) noexcept {}
  virtual void sample(std::int64_t /*now_ns*/) noexcept {}
  virtual void stop(std::int64_t /*now_ns*/) noexcept {}
  /// Per-step values for steps[]: `records` are the retained steps in report order, row i of
  /// `table` is records[i]. Components run in registration order, so a later one (carbon) reads
  /// the columns of an earlier one (energy).
  virtual void step_columns(const std::vector<StepRecord>& /*records*/,
                            StepTable& /*table*/) noexcept {}
  /// Fill or amend report sections (every top-level key but "steps", which the writer streams
  /// from the records and `steps`). Components run in registration order, so a later one
  /// (carbon) reads what an earlier one (energy) wrote. The default calls contribute(report).
  virtual void contribute(nlohmann::json& report, const StepTable& /*steps*/) noexcept {
    contribute(report);
  }
  virtual void contribute(nlohmann::json& /*report*/) noexcept {}
  /// After the report was written to `report_path` (exports beside it): `report` holds every
  /// section, its steps[] empty; `steps` hands out the written steps one at a time, as JSON.
  virtual void after_write(const nlohmann::json& /*report*/, const StepSource& /*steps*/) noexcept {
  }
};

}  // namespace trainmeter::detail
