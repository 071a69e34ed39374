// The energy estimate used when nothing is measured: CPU from its TDP and this process's CPU
// utilisation, RAM from a W/GiB constant over the process's RSS, GPU from TDP x utilisation.
// Every constant is cited in docs/methodology.md (Energy).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trainmeter::detail {

/// CodeCarbon v3.3.0 (core/cpu.py): a CPU model it cannot find gets 4 W per hardware thread.
inline constexpr double kDefaultCpuWattsPerThread = 4.0;
/// CodeCarbon v2 RAM rule (docs/explanation/methodology.md, citing Crucial): 3 W per 8 GB; also
/// Eco2AI's constant. Applied per GiB (memory modules come in binary sizes).
inline constexpr double kRamWattsPerGiB = 3.0 / 8.0;
/// Green Algorithms TDP_gpu.csv v3.0, model "Any": used for a GPU with neither table entry nor
/// NVML power limit.
inline constexpr double kDefaultGpuWatts = 200.0;

struct CpuIdentity {
  std::string model;     ///< /proc/cpuinfo "model name" ("" when unknown)
  int sockets = 1;       ///< distinct "physical id" values (1 when not listed)
  int logical_cpus = 0;  ///< processor entries
};
CpuIdentity read_cpu_identity(const std::string& proc_root) noexcept;

/// The CPU TDP the estimator uses and why.
struct CpuTdpChoice {
  double machine_tdp_w = 0;   ///< all sockets together
  double socket_tdp_w = 0;    ///< per socket (table or override); per-thread default: machine/1
  std::string basis;          ///< "override", "table", "per-thread default"
  std::string matched_model;  ///< the table's model ("" otherwise)
  std::string source;         ///< citation
};
/// `override_w` (TRAINMETER_CPU_TDP_W) is the machine's total.
CpuTdpChoice choose_cpu_tdp(const CpuIdentity& cpu, std::optional<double> override_w) noexcept;

/// Energy (J) the CPU model attributes to `process_cpu_s` seconds of this process's CPU time on
/// a machine of `logical_cpus` hardware threads: TDP x process_cpu_s / logical_cpus, i.e. power
/// TDP x utilisation with utilisation = cpu time / (wall x logical CPUs) (CodeCarbon's process
/// mode).
double estimate_cpu_joules(double machine_tdp_w, double process_cpu_s, int logical_cpus) noexcept;
/// Power (W) of `rss_bytes` of resident memory under kRamWattsPerGiB.
double estimate_ram_watts(std::int64_t rss_bytes) noexcept;

/// GPU TDP for the estimate: table, else NVML's enforced power limit, else kDefaultGpuWatts.
struct GpuTdpChoice {
  double tdp_w = 0;
  std::string basis;  ///< "table", "power limit", "default"
  std::string source;
};
GpuTdpChoice choose_gpu_tdp(const std::string& gpu_name, double power_limit_w) noexcept;

}  // namespace trainmeter::detail
