// The energy-source interface: one class per source (RAPL/powercap, the perf power PMU, NVML,
// AMD SMI, the estimator), each probed with a reason, primed, sampled and described; the sampler
// (energy.cpp) owns the list and knows no source by name. The registration table
// (energy_source_registry) is the one place the accepted names of `energy_sources`, the probe
// command and the sampler read. Where to add a source: docs/architecture.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/diagnostics.hpp"
#include "energy/counter.hpp"
#include "energy/source_status.hpp"
#include "trainmeter/config.hpp"

namespace trainmeter::detail {

// Above this average power over one interval a counter delta is a glitch, not energy: no CPU
// package, DRAM domain or GPU board draws 5 kW.
inline constexpr double kMaxPlausibleWatts = 5000.0;

// A counter that has not yet shown energy is called unavailable (a virtual machine's PMU that
// never moves) once it has stood still over this much busy CPU time, the probe's own busy spin.
// One short interval is not enough: RAPL refreshes about every millisecond, but a counter read
// every 10 ms on a loaded machine, or one refreshed by another process, can show one interval
// with no change and move the next.
inline constexpr double kStuckUnavailableS = 0.1;

enum class ChannelState { kPending, kQualified, kDisqualified };

/// One measured (or estimated) series of joules: what a source registers at probe, and the
/// sampler's running sums for it. Sources fill the descriptive fields and `index` (their own
/// device or counter number); the sampler owns the sums.
struct Channel {
  std::string name;        ///< component: cpu, dram, platform, gpu:N
  std::string source;      ///< rapl:package-0, perf:energy-pkg, nvml:gpu0:energy-counter, ...
  std::string provenance;  ///< measured, integrated, estimated
  std::string attribution;
  int preference = 2;            ///< within one component name, lower wins when qualified
  bool machine_level = false;    ///< attributed by this process's CPU-time share
  bool has_machine = true;       ///< false for estimates: no machine reading
  bool list_unused = true;       ///< listed in sources_tried when measured but not selected
  std::size_t source_index = 0;  ///< the owning source in the sampler's list
  std::size_t index = 0;         ///< the source's own device or counter number
  ChannelState state = ChannelState::kPending;
  CounterTracker counter;
  bool has_power = false;
  double last_power_w = 0;
  double machine_j = 0, attributed_j = 0, covered_s = 0;
  double pending_stuck_s = 0;  ///< busy seconds the counter stood still before it first moved
  std::uint64_t samples = 0, discarded = 0, failed_reads = 0;
  std::map<std::string, std::uint64_t> attribution_counts;  // GPU: label -> intervals
};

/// What every source shares while the sampler runs: the configuration, the diagnostics and the
/// sources_tried list (in the order sources were probed).
struct SourceEnv {
  const Config& config;
  Diagnostics& diagnostics;
  std::vector<SourceStatus>& tried;
  bool estimate_enabled = false;  ///< a GPU without energy or power may fall back to TDP
  int logical_cpus = 0;           ///< from /proc/stat when readable
  /// Adds `s` to sources_tried, and to the diagnostics when it is a problem to fix.
  void note(const SourceStatus& s);
};

/// One sample interval as the sampler saw it.
struct Interval {
  std::int64_t now_ns = 0;
  double dt_s = 0;
  bool busy = false;                      ///< the machine's CPUs did work in the interval
  std::optional<double> process_cpu_s;    ///< this process's CPU seconds in the interval
  std::optional<std::int64_t> rss_bytes;  ///< this process's resident memory now
};

/// The joules of one channel over one interval. machine_j: what the device or machine spent;
/// attributed_j: this process's part when the source knows it (GPUs, estimates). Machine-level
/// channels are attributed by the sampler (CPU-time share).
struct Reading {
  std::optional<double> machine_j, attributed_j;
};

/// Static facts of one GPU for host.gpus and memory.gpu_device_used_peak_bytes.
struct GpuFacts {
  unsigned int index = 0;
  std::string name, uuid;
  double power_limit_w = -1;          ///< < 0 when unknown
  long long memory_total_bytes = -1;  ///< < 0 when unknown
  std::optional<long long> used_peak_bytes;
};

class EnergySource {
 public:
  explicit EnergySource(SourceEnv& env) : env_(env) {}
  virtual ~EnergySource() = default;
  EnergySource(const EnergySource&) = delete;
  EnergySource& operator=(const EnergySource&) = delete;

  /// Finds the devices: appends the usable channels (with their first reading taken) to
  /// `channels`, and every outcome, usable or not and why, to env.tried. `first_gpu` is the
  /// index the source's first GPU gets (GPUs of several vendors are numbered in probe order).
  virtual void probe(std::vector<Channel>& channels, unsigned int first_gpu) = 0;
  /// The baseline reading of a channel, so that the first interval has one.
  virtual void prime(Channel& /*c*/, const Interval& /*now*/) {}
  /// Once per interval, before the channels are read (device-wide readings: memory, use).
  virtual void begin_interval(const Interval& /*in*/) {}
  /// The channel's joules over the interval; may qualify or disqualify it.
  virtual Reading sample(Channel& c, const Interval& in) = 0;
  /// Method notes, inputs and constants of a channel for the report.
  virtual void describe(const Channel& /*c*/, nlohmann::json& /*component*/,
                        nlohmann::json& /*notes*/) const {}
  /// The GPUs this source found, in its order.
  virtual void gpus(std::vector<GpuFacts>& /*out*/) const {}
  /// Releases devices and libraries (at stop()).
  virtual void close() noexcept {}

 protected:
  SourceEnv& env_;
};

/// One row of the registration table.
struct EnergySourceRegistration {
  const char* name;     ///< the energy_sources value
  const char* summary;  ///< what it reads, for docs and `trainmeter probe --help`
  /// true: `trainmeter probe` lists this source through probe() (GPU libraries); false: the
  /// probe command measures it under a busy loop itself (CPU counters) or shows it as the
  /// estimator.
  bool probe_lists;
  std::unique_ptr<EnergySource> (*make)(SourceEnv& env);
};

/// Every source, in probe order (which is also the order of channels and sources_tried).
const std::vector<EnergySourceRegistration>& energy_source_registry();
/// The accepted values of `energy_sources`: "auto, or a comma-separated subset of a,b,...".
std::string energy_sources_accepted();
/// The names in the registry.
std::vector<std::string> energy_source_names();

/// Shared by the counter sources (RAPL, perf): machine joules of a cumulative counter over the
/// interval from a raw reading (`ok` false: the read failed with `err`), or nullopt when the
/// interval is lost (read error, reset, glitch, stuck counter); a counter that never moved over
/// a busy interval disqualifies its channel (a VM's PMU), never 0 J measured.
std::optional<double> sample_cpu_counter(SourceEnv& env, Channel& c, bool ok, std::uint64_t raw,
                                         int err, const Interval& in);

/// The notes of a machine-level counter channel (wraps corrected, CPU-time attribution).
void describe_machine_counter(const Channel& c, nlohmann::json& notes);

std::unique_ptr<EnergySource> make_rapl_source(SourceEnv& env);
std::unique_ptr<EnergySource> make_perf_source(SourceEnv& env);
std::unique_ptr<EnergySource> make_nvml_source(SourceEnv& env);
std::unique_ptr<EnergySource> make_estimate_source(SourceEnv& env);
std::unique_ptr<EnergySource> make_amdsmi_source(SourceEnv& env);

}  // namespace trainmeter::detail
