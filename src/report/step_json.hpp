// The one JSON form of a step record, used by the report (steps[], streamed by StepWriter) and
// the JSONL stream (step lines, step_json()), so that the two can never disagree on a key. The
// record's own fields and the components' per-step columns (base/step_table.hpp) are written
// together, keys in byte order, exactly as nlohmann::json would dump the same object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/step_table.hpp"
#include "trainmeter/step.hpp"

namespace trainmeter::detail {

/// Appends `x` as nlohmann::json::dump() writes a double (shortest round trip, ".0" on
/// integral values, null when not finite).
void append_json_double(std::string& out, double x);

class StepWriter {
 public:
  static constexpr std::size_t kNoRow = static_cast<std::size_t>(-1);

  /// `run_start_ns`: the run's steady-clock start (start_offset_ns is relative to it).
  /// `phase_names[id]` names phase id (ids past the end are "other"). Metrics are written (as
  /// "metrics": {name: value}) when `metric_names` is not empty. `table` may be null (no
  /// per-step columns); it must outlive the writer.
  StepWriter(std::int64_t run_start_ns, const std::vector<std::string>& phase_names,
             const std::vector<std::string>& metric_names, const StepTable* table = nullptr);

  /// Appends the step's compact JSON object; `row` is its row in the table (kNoRow: none).
  void append(std::string& out, const StepRecord& r, std::size_t row = kNoRow) const;

 private:
  enum class Base : std::uint8_t {
    kCpuNs,
    kGpuNs,
    kIndex,
    kLoss,
    kMetrics,
    kPeakCuda,
    kPeakTensor,
    kPhase,
    kSamples,
    kStartOffset,
    kThread,
    kTokens,
    kWallNs,
    kWarmup,
    kColumn
  };
  struct Field {
    std::string key;  // the key as JSON text plus ':' ("\"wall_ns\":")
    Base base;
    std::size_t column;  // for kColumn: index into the table's columns
  };
  void append_column(std::string& out, const StepTable::Column& c, std::size_t row,
                     const std::string& key, bool& first) const;

  std::int64_t run_start_ns_;
  std::vector<std::string> phases_;  // phase names as JSON strings
  std::string other_phase_;
  std::vector<std::pair<std::string, std::size_t>> metrics_;  // "\"name\":", index; key order
  const StepTable* table_;
  std::vector<Field> fields_;  // key order
};

/// The step as a JSON object (for the stream's step lines). gpu_ns is whatever the record holds:
/// the collector resolves it after the step was streamed, so stream lines carry null there and
/// the report the resolved time.
nlohmann::json step_json(const StepRecord& r, std::int64_t run_start_ns, const std::string& phase,
                         const std::vector<std::string>& metric_names = {});

}  // namespace trainmeter::detail
