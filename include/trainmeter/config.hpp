// trainmeter: run configuration.
//
// One struct holds every setting. One key table (see keys()) drives the TRAINMETER_* environment
// layer, configuration files, the CLI's help and docs/configuration.md, so the four never
// disagree. Every key's environment variable is "TRAINMETER_" followed by the key in upper case.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainmeter/error.hpp"
#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

/// Settings of one Session. Plain value type; copy freely. Units are in the names.
struct TRAINMETER_EXPORT Config {
  // --- core -----------------------------------------------------------------------------------
  /// false turns every step scope into a no-op (one predictable branch) and writes no report.
  bool enabled = true;
  /// Name of the run; default: the executable's name.
  std::string run_name;
  /// Report path; default "runs/<run_name>.json" (with ".rank<R>" before ".json" when
  /// world_size > 1). The directory is created at construction.
  std::string output;
  /// Run identifier shared by every rank of one run; default: generated (time + random).
  std::string run_id;
  /// Leading steps of each phase kept out of the statistics (still retained, flagged warm-up).
  std::uint64_t warmup_steps = 1;
  /// Step records kept in memory for the report; past this, statistics stay exact for
  /// count/mean/stddev/min/max and percentiles come from a sketch (relative error <= 1%).
  std::uint64_t max_retained_steps = 100000;
  /// Read the thread's CPU clock at both ends of every step (costs two syscalls per step).
  bool step_cpu_time = false;
  /// Background sampling interval for memory, power and energy, in milliseconds.
  std::uint32_t sample_interval_ms = 100;
  /// Samples (memory and power timeline points) kept in memory for the report.
  std::uint64_t max_retained_samples = 100000;
  /// Free-form labels written into run.tags.
  std::map<std::string, std::string> tags;
  /// Root of the proc file system (tests point it at a fake tree).
  std::string proc_root = "/proc";

  // --- memory ---------------------------------------------------------------------------------
  /// Install libtorch's allocator reporter (trainmeter::torch) to track tensor bytes per step.
  bool track_tensor_memory = true;
  /// Reset CUDA's caching-allocator peak at every step boundary (interferes with user code that
  /// reads those peaks itself; off by default: peaks are then "since start").
  bool cuda_peak_reset = false;
  /// CUDA-event GPU time per step (trainmeter::torch with CUDA); see docs/gpu.md.
  bool gpu_step_time = true;

  // --- energy ---------------------------------------------------------------------------------
  /// Root of the powercap sysfs tree.
  std::string powercap_root = "/sys/class/powercap";
  /// Root of perf's event-source devices.
  std::string perf_event_root = "/sys/bus/event_source/devices";
  /// NVML shared library to dlopen.
  std::string nvml_library = "libnvidia-ml.so.1";
  /// AMD SMI (ROCm) shared library to dlopen.
  std::string amdsmi_library = "libamd_smi.so";
  /// Energy sources to try: "auto" (all) or names from the energy-source registration table
  /// (src/energy/source.cpp; `trainmeter config` lists them).
  std::vector<std::string> energy_sources = {"auto"};
  /// Include RAPL's psys (platform) domain.
  bool rapl_psys = false;
  /// CPU thermal design power override for the estimator, in watts.
  std::optional<double> cpu_tdp_w;

  // --- carbon and cost ------------------------------------------------------------------------
  /// Power usage effectiveness of the data centre (>= 1.0).
  double pue = 1.0;
  /// Explicit grid carbon intensity, g CO2e per kWh.
  std::optional<double> carbon_intensity;
  /// CSV time series "timestamp_utc,g_per_kwh" of grid intensity.
  std::string carbon_intensity_file;
  /// Cloud region "provider:region", e.g. "gcp:europe-west9".
  std::string cloud_region;
  /// ISO 3166 alpha-2 or alpha-3 country code.
  std::string country;
  /// Instance price per hour, in `currency`.
  std::optional<double> price_per_hour;
  /// Energy price per kWh, in `currency`.
  std::optional<double> energy_price_per_kwh;
  std::string currency = "USD";

  // --- outputs --------------------------------------------------------------------------------
  /// JSON Lines stream written while the run goes on ("" = none).
  std::string stream;
  /// How often the stream is flushed, in milliseconds.
  std::uint32_t flush_interval_ms = 1000;
  /// Extra outputs written beside the report at finish(): csv, prom, trace, html.
  std::vector<std::string> exports;
  /// One-line progress display on stderr: auto (when stderr is a terminal), on, off.
  std::string progress = "auto";
  /// Total steps expected (for the progress ETA); 0 = unknown.
  std::uint64_t total_steps = 0;
  /// Port of the live Prometheus endpoint (GET /metrics) served while the run goes on; 0 = off.
  std::uint16_t metrics_port = 0;
  /// Address the endpoint listens on: an IPv4 or IPv6 literal (loopback by default).
  std::string metrics_address = "127.0.0.1";

  // --- op accounting --------------------------------------------------------------------------
  /// Record per-op time and FLOPs with a libtorch RecordFunction callback on selected steps.
  bool ops = false;
  /// With ops on: account every Nth step after warm-up.
  std::uint64_t ops_every = 10;

  // --- distributed ----------------------------------------------------------------------------
  /// Rank of this process and world size (default from RANK / WORLD_SIZE, torchrun's names).
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;

  /// Environment overrides on top of `base`: reads torchrun's RANK, WORLD_SIZE, LOCAL_RANK,
  /// LOCAL_WORLD_SIZE, then TRAINMETER_CONFIG_FILE (if set), then every TRAINMETER_<KEY>.
  /// Throws Error listing every invalid or unknown variable at once.
  static Config from_env(Config base);
  static Config from_env() { return from_env(Config()); }
  /// Reads "key = value" lines ('#' comments) from a file on top of `base`. Unknown keys and bad
  /// values throw Error naming the file, line, key, value and what is accepted.
  static Config from_file(const std::string& path, Config base);
  static Config from_file(const std::string& path) { return from_file(path, Config()); }

  /// Sets one key from its textual form (as in the environment). Throws Error on a bad value.
  void set(const std::string& key, const std::string& value);
  /// The textual form of one key's current value.
  std::string get(const std::string& key) const;
  /// Checks cross-field rules (ranges, rank < world size). Throws Error listing every problem.
  void validate() const;
};

/// One row of the key table.
struct TRAINMETER_EXPORT ConfigKey {
  const char* name;          ///< key, e.g. "sample_interval_ms"
  const char* type;          ///< bool, uint, int, double, string, path, list, map
  const char* default_text;  ///< default as text ("" for none)
  const char* accepted;      ///< accepted values in words
  const char* help;          ///< one-sentence description
  const char* group;         ///< core, memory, energy, carbon, outputs, ops, distributed
  /// Numeric keys (uint, int, double): the accepted range, inclusive. NaN for the others. The
  /// CLI's flags for the same quantity (`trainmeter estimate --pue`, `recompute
  /// --price-per-hour`, `merge --world-size`, ...) accept exactly this range.
  double min_value = std::numeric_limits<double>::quiet_NaN();
  double max_value = std::numeric_limits<double>::quiet_NaN();
};

/// Every configuration key, in documentation order.
TRAINMETER_EXPORT const std::vector<ConfigKey>& config_keys();
/// The row of one key; throws Error for an unknown key.
TRAINMETER_EXPORT const ConfigKey& config_key(const std::string& name);
/// "TRAINMETER_" + upper-case key.
TRAINMETER_EXPORT std::string env_name(const char* key);

TRAINMETER_END_NAMESPACE
