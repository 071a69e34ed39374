// What the run's components know while it goes on (energy so far, power, memory), published by
// the measuring components on the collector thread after each of their samples and read by the
// consumers of live figures (the JSONL stream, the progress line, the metrics endpoint) on any
// thread. One small mutex-protected snapshot: never touched by the step path.
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace trainmeter::detail {

inline constexpr double kLiveUnknown = std::numeric_limits<double>::quiet_NaN();

/// One energy channel (cpu, dram, platform, gpu:N) as the sampler last saw it.
struct LiveEnergyChannel {
  std::string component;   ///< cpu, dram, platform, gpu:0, ... (report energy.components keys)
  std::string source;      ///< rapl:package-0, nvml:gpu0:energy-counter, estimate:tdp, ...
  std::string provenance;  ///< measured, integrated or estimated
  bool selected = false;   ///< counted in the run's total (energy.selected_components)
  double energy_j = 0;     ///< attributed to this process since the run started
  double power_w = kLiveUnknown;  ///< attributed power over the last sample interval; NaN unknown
  std::string attribution;        ///< report key energy.components[].attribution
  double machine_energy_j = kLiveUnknown;  ///< the whole machine's reading since the start
};

/// A CUDA device's caching-allocator figures at the last sample.
struct LiveCudaMemory {
  int device = 0;
  std::int64_t allocated_bytes = -1;
  std::int64_t reserved_bytes = -1;
};

struct LiveSnapshot {
  // energy (the energy component)
  std::int64_t energy_t_ns = -1;         ///< steady ns of the last energy sample; -1 none yet
  std::uint64_t energy_samples = 0;      ///< timeline rows so far
  double energy_total_j = kLiveUnknown;  ///< selected channels' attributed energy so far
  double power_w = kLiveUnknown;         ///< selected channels' power, last interval
  bool energy_estimated = false;         ///< some selected channel is estimated
  std::vector<LiveEnergyChannel> channels;
  // memory (the process memory component; the torch memory component when tracking)
  std::int64_t memory_t_ns = -1;             ///< steady ns of the last RSS sample; -1 none yet
  std::int64_t rss_bytes = -1;               ///< -1: not measured
  std::int64_t rss_peak_sampled_bytes = -1;  ///< highest RSS sampled so far
  std::int64_t tensor_bytes = -1;            ///< live tensor bytes (track_memory); -1 unknown
  std::int64_t tensor_peak_bytes = -1;
  std::vector<LiveCudaMemory> cuda;
};

/// The shared snapshot. Writers lock, copy their fields in and bump the version; readers copy
/// the whole snapshot out under the lock (a few hundred bytes), so neither side waits long.
class LiveState {
 public:
  template <typename F>
  void update(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    f(snapshot_);
    ++version_;
  }
  LiveSnapshot read() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshot_;
  }
  std::uint64_t version() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return version_;
  }

 private:
  mutable std::mutex mutex_;
  LiveSnapshot snapshot_;
  std::uint64_t version_ = 0;
};

}  // namespace trainmeter::detail
