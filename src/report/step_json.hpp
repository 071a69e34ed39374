// The one JSON form of a step record, used by the report (steps[]) and the JSONL stream (step
// lines), so that the two can never disagree on a key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainmeter/step.hpp"

namespace trainmeter::detail {

/// `run_start_ns`: the run's steady-clock start (start_offset_ns is relative to it). Metrics are
/// written (as "metrics": {name: value}) when `metric_names` is not empty. gpu_ns is whatever
/// the record holds: the collector resolves it after the step was streamed, so stream lines carry
/// null there and the report the resolved time.
nlohmann::json step_json(const StepRecord& r, std::int64_t run_start_ns, const std::string& phase,
                         const std::vector<std::string>& metric_names = {});

}  // namespace trainmeter::detail
