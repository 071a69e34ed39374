// Facts about the machine for the report's `host` section, read once at start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trainmeter::detail {

struct HostInfo {
  std::optional<std::string> hostname, os, kernel, cpu_model;
  std::optional<std::string> boot_id;  ///< <proc_root>/sys/kernel/random/boot_id: this boot
  std::optional<std::int64_t> logical_cpus, memory_bytes;
};

/// Reads hostname (uname), OS (/etc/os-release PRETTY_NAME), kernel release, CPU model
/// (<proc_root>/cpuinfo), logical CPUs and memory (<proc_root>/meminfo), the boot id
/// (<proc_root>/sys/kernel/random/boot_id: tells apart machines that share a hostname). Missing
/// facts are nullopt.
HostInfo read_host_info(const std::string& proc_root);

/// The process's command line (<proc_root>/self/cmdline), argv[0] first; empty when unreadable.
std::vector<std::string> read_command_line(const std::string& proc_root);

/// Process CPU time (user, system) in seconds, from getrusage(RUSAGE_SELF).
struct CpuTimes {
  double user_s = 0;
  double system_s = 0;
};
CpuTimes process_cpu_times() noexcept;

}  // namespace trainmeter::detail
