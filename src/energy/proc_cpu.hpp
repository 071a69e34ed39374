// CPU time of this process and of the whole machine, from <proc_root>/self/stat and
// <proc_root>/stat, for attributing machine-level energy and for the estimator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "platform/file.hpp"

namespace trainmeter::detail {

/// One reading. Times are in clock ticks (USER_HZ, sysconf(_SC_CLK_TCK)): the kernel keeps both
/// files at that resolution, so shares computed from them are consistent with each other.
struct ProcCpuSample {
  std::optional<std::uint64_t> process_ticks;  ///< utime + stime of this process
  std::optional<std::uint64_t>
      machine_busy_ticks;  ///< all CPUs: user+nice+system+irq+softirq+steal
  std::optional<std::uint64_t> machine_total_ticks;  ///< busy + idle + iowait
  std::optional<std::int64_t> rss_bytes;             ///< resident set size of this process
};

/// Keeps both files open (pread) and parses them without allocating. Not thread-safe.
class ProcCpuReader {
 public:
  /// Opens the files under `proc_root` and reads the logical CPU count (the "cpuN" lines).
  explicit ProcCpuReader(const std::string& proc_root) noexcept;
  ProcCpuSample read() const noexcept;
  /// Logical CPUs listed in <proc_root>/stat; 0 when unreadable.
  int logical_cpus() const noexcept { return logical_cpus_; }
  double ticks_per_second() const noexcept { return ticks_per_second_; }
  bool process_ok() const noexcept { return self_stat_.is_open(); }
  bool machine_ok() const noexcept { return stat_.is_open(); }
  const KeptOpenFile& self_stat_file() const noexcept { return self_stat_; }
  const KeptOpenFile& stat_file() const noexcept { return stat_; }

 private:
  KeptOpenFile self_stat_, stat_;
  int logical_cpus_ = 0;
  double ticks_per_second_ = 100;
  std::int64_t page_bytes_ = 4096;
};

/// Parses the text of /proc/<pid>/stat: utime+stime (ticks) and rss (pages).
bool parse_self_stat(const char* text, std::uint64_t* ticks, std::int64_t* rss_pages) noexcept;
/// Parses the first ("cpu ") line of /proc/stat.
bool parse_machine_stat(const char* text, std::uint64_t* busy, std::uint64_t* total) noexcept;

}  // namespace trainmeter::detail
