// The outputs component: the crash-safe JSON Lines stream (config.stream), the one-line progress
// display on stderr (config.progress) and the exports written beside the report at finish
// (config.exports). Registered last among the built-ins: exports read every section.
#pragma once

#include <memory>

#include "base/component.hpp"

namespace trainmeter::detail {

/// Stream line format, version 1 (one JSON object per line, told apart by "type"):
///   {"type":"header","stream_version":1,"schema_version":1,"trainmeter":{..},"run":{..},
///    "host":{..},"config":{..}}                                   written and flushed at start
///   {"type":"step", <the report's step keys: index, phase, thread, start_offset_ns, wall_ns,
///    cpu_ns, samples, tokens, warmup, loss, peak_tensor_bytes>}     one per step, in index order
///   {"type":"sample","t_offset_ns":N,"rss_bytes":N|null,           every sampling interval
///    "energy":{"t_offset_ns":N,"samples":N,"total_j":x|null,"power_w":x|null,"estimated":b,
///              "components":[{"name","source","provenance","attribution","selected",
///                             "energy_j","machine_energy_j","power_w"}]},  when a new energy
///                                                                 row exists (cumulative J)
///    "tensor_bytes":N,"peak_tensor_bytes":N,"cuda":[{"device","allocated_bytes",
///    "reserved_bytes"}]}                                          when known
///   {"type":"footer","status":..,"end_utc":..,"duration_s":..,"steps_recorded":..,"phases":{..},
///    "energy_total_j":..,"co2e_kg":..,"report":"path"}              after the report is written
/// Lines are buffered on the collector thread and written with one write(2) + fdatasync every
/// flush_interval_ms, so a killed process loses at most the last interval and at most one torn
/// final line.
inline constexpr int kStreamVersion = 1;

/// Throws Error (naming TRAINMETER_STREAM) when the stream path cannot be opened for writing.
std::unique_ptr<Component> make_outputs_component(RunContext& ctx);

}  // namespace trainmeter::detail
