// The energy component: samples RAPL (powercap), the perf power PMU and NVML on the collector
// thread, falls back to an estimate, attributes machine-level energy to this process, and fills
// the report's `energy` section, per-step and per-phase `energy_j`, host.gpus and
// memory.gpu_device_used_peak_bytes.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "base/component.hpp"

namespace trainmeter::detail {

/// Builds the energy component for a run. Throws Error when config.energy_sources names an
/// unknown source. The component keeps a reference to `ctx`, which must outlive it.
std::unique_ptr<Component> make_energy_component(RunContext& ctx);

/// What `trainmeter probe` prints: every source on this machine with its status and reason, the
/// CPU model, and the TDP the estimator would use. Reads counters twice around a ~`busy_ms`
/// busy loop to tell a counter that reads zero from a working one. Never throws.
nlohmann::json probe_energy_sources(const Config& config, int busy_ms = 200) noexcept;

}  // namespace trainmeter::detail
