// The perf `power` PMU (/sys/bus/event_source/devices/power): RAPL counters read through
// perf_event_open, system-wide, one counter per package.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "energy/source_status.hpp"

namespace trainmeter::detail {

/// One event as sysfs describes it: events/<name> ("event=0x02"), <name>.scale (joules per
/// count), <name>.unit ("Joules").
struct PerfEventSpec {
  std::string name;  ///< "energy-pkg", "energy-ram", "energy-psys", ...
  std::uint64_t config = 0;
  double scale = 0;  ///< joules per raw count
  std::string unit;
};

/// The PMU as read from sysfs (no system calls): parsing is testable on a fake tree.
struct PerfPowerPmu {
  bool present = false;
  int type = -1;                      ///< perf_event_attr.type
  std::vector<int> cpus;              ///< cpumask: one CPU per package
  std::vector<PerfEventSpec> events;  ///< every energy-* event with a parsable config and scale
  std::vector<SourceStatus> tried;    ///< problems found while reading sysfs
};

PerfPowerPmu read_perf_power_pmu(const std::string& event_source_root) noexcept;

/// Parses "event=0x02" (optionally with more ",key=value" terms, ignored when 0).
bool parse_perf_event_config(const std::string& text, std::uint64_t* config) noexcept;
/// Parses a CPU list such as "0", "0,36", "0-3,8".
std::vector<int> parse_cpu_list(const std::string& text);

/// An open system-wide counter. Move-only; closes on destruction.
class PerfCounter {
 public:
  PerfCounter() = default;
  ~PerfCounter();
  PerfCounter(PerfCounter&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PerfCounter& operator=(PerfCounter&& o) noexcept;
  PerfCounter(const PerfCounter&) = delete;
  PerfCounter& operator=(const PerfCounter&) = delete;

  /// perf_event_open(type, config) on `cpu` for all processes. Returns 0 or errno.
  int open(int type, std::uint64_t config, int cpu) noexcept;
  /// The raw count; false on error (`err` gets errno).
  bool read(std::uint64_t* value, int* err) const noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// Test seam (tests/energy): when set, PerfCounter::open calls `fn(type, config, cpu)` instead of
/// the perf_event_open system call. `fn` returns a file descriptor whose read() yields the
/// 8-byte count, or -errno. nullptr (the default) restores the system call.
using PerfEventOpenFn = int (*)(int type, std::uint64_t config, int cpu);
void set_perf_event_open_for_testing(PerfEventOpenFn fn) noexcept;

/// The event's role: "cpu" (energy-pkg), "dram" (energy-ram), "platform" (energy-psys), or ""
/// for events contained in the package (energy-cores, energy-gpu).
std::string perf_event_kind(const std::string& event_name);

/// Diagnostic text for perf_event_open failing with `err`.
std::string perf_open_error_text(const std::string& event, int cpu, int err);

}  // namespace trainmeter::detail
