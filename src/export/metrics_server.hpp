// The live Prometheus endpoint (config.metrics_port): GET /metrics served by cpp-httplib on its
// own threads, answering with exposition text the collector rendered at its last sample. The
// HTTP threads never read session state: they copy a shared pointer to the latest text under a
// mutex held for that copy only, so a slow or hostile client cannot delay the collector or the
// training threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/live.hpp"

namespace trainmeter::detail {

/// Whether this build can serve the endpoint (cpp-httplib was found at configure time).
bool metrics_server_available() noexcept;

class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds address:port and starts serving. Returns "" on success, else why not (port in use,
  /// address not assigned to this host...). Never throws.
  std::string start(const std::string& address, std::uint16_t port) noexcept;
  /// Replaces the text that scrapes get (any thread; the collector's at each sample).
  void publish(std::string text) noexcept;
  /// From now on scrapes are counted as arriving during finish().
  void mark_finishing() noexcept { finishing_.store(true); }
  /// Stops listening and joins the server thread; idempotent.
  void stop() noexcept;
  bool running() const noexcept { return thread_.joinable(); }
  std::uint64_t scrapes() const noexcept { return scrapes_.load(); }
  std::uint64_t scrapes_during_finish() const noexcept { return finish_scrapes_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::mutex text_mutex_;
  std::shared_ptr<const std::string> text_;
  std::atomic<bool> finishing_{false};
  std::atomic<std::uint64_t> scrapes_{0}, finish_scrapes_{0};
};

/// Figures the outputs component keeps from the steps it sees, per phase.
struct LivePhase {
  std::string name;
  std::uint64_t steps = 0;        ///< warm-up included
  std::uint64_t timed_steps = 0;  ///< warm-up excluded (the quantiles' population)
  double wall_sum_s = 0;          ///< of the timed steps
  double samples = 0;             ///< of every step
  double loss = kLiveUnknown;     ///< last step's loss; NaN none yet
  double p50_s = kLiveUnknown, p90_s = kLiveUnknown, p95_s = kLiveUnknown, p99_s = kLiveUnknown;
};

/// Everything one rendering of the live exposition needs (copied out, no references).
struct LiveMetrics {
  std::string run_name, run_id, program, host, version;
  int rank = 0, world_size = 1;
  double uptime_s = 0;
  double samples_per_s = kLiveUnknown;  ///< over the last window of about a second
  std::vector<LivePhase> phases;
  LiveSnapshot live;
  double pue = 1.0;
  double intensity_g_per_kwh = kLiveUnknown;
  std::string intensity_source;
  double co2e_g = kLiveUnknown;  ///< live.energy_total_j x PUE x intensity (carbon_kg)
  bool finished = false;         ///< the collector has stopped: these are the final figures
};

/// Prometheus text exposition (format 0.0.4) of the live figures; names shared with the
/// textfile export (export/prometheus.cpp) where the quantity is the same.
std::string prometheus_live_text(const LiveMetrics& m);

}  // namespace trainmeter::detail
