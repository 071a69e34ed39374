// RAPL energy counters through the powercap sysfs tree (/sys/class/powercap by default).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "energy/source_status.hpp"
#include "platform/file.hpp"

namespace trainmeter::detail {

/// One RAPL domain we read. Package domains are kind "cpu", dram domains "dram", psys
/// "platform". A package's children (core, uncore) are never read: the package includes them.
struct RaplDomain {
  std::string zone;    ///< sysfs entry, e.g. "intel-rapl:0" or "intel-rapl-mmio:0"
  std::string name;    ///< contents of `name`: "package-0", "dram", "psys"
  std::string kind;    ///< "cpu", "dram" or "platform"
  std::string source;  ///< report label, e.g. "rapl:package-0", "rapl:package-0:dram"
  std::uint64_t max_energy_range_uj = 0;  ///< 0 when unreadable (wrap correction then impossible)
  std::uint64_t first_uj = 0;             ///< the reading taken while probing
  KeptOpenFile energy_uj;                 ///< kept open: one pread per sample
};

struct RaplDiscovery {
  std::vector<RaplDomain> domains;  ///< readable domains to sample, in zone order
  std::vector<SourceStatus> tried;  ///< every zone seen, with why it is used or not
};

/// Scans `root` for intel-rapl:* and intel-rapl-mmio:* zones. A domain present through both
/// interfaces is read once, through MMIO (as CodeCarbon does). `include_psys` selects psys instead
/// of the package and dram domains it already contains. Never throws.
RaplDiscovery discover_rapl(const std::string& root, bool include_psys) noexcept;

/// The diagnostic text for a RAPL file that cannot be opened with errno `err`: for EACCES and
/// EPERM it explains CVE-2020-8694 and how to grant read access.
std::string rapl_open_error_text(const std::string& path, int err);

}  // namespace trainmeter::detail
