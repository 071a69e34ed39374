// The session's implementation: thread rings, the collector thread, aggregation, finish().
// Integrations (trainmeter::torch) use add_component(), hot() and context().
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/component.hpp"
#include "base/stats.hpp"
#include "core/gpu_timing.hpp"
#include "trainmeter/report.hpp"
#include "trainmeter/session.hpp"

namespace trainmeter::detail {

/// Aggregates of one phase, updated by the collector as steps arrive.
struct PhaseAggregate {
  std::string name;
  std::uint64_t steps = 0;         // all steps, warm-up included
  std::uint64_t warmup_steps = 0;  // of which warm-up
  std::uint64_t samples = 0;       // non-warm-up
  std::uint64_t tokens = 0;        // non-warm-up
  double wall_sum_ns = 0;          // non-warm-up
  std::uint64_t retained = 0;      // non-warm-up steps among the retained records
  RunningStats wall, cpu, loss;
  QuantileSketch wall_sketch, cpu_sketch;
  // GPU time of non-warm-up steps (CUDA events), as steps resolve.
  RunningStats gpu;
  QuantileSketch gpu_sketch;
  double gpu_sum_ns = 0;       // sum of their GPU times
  double gpu_wall_sum_ns = 0;  // sum of the same steps' wall times
  std::uint64_t gpu_retained = 0;
  double first_loss = std::nan(""), last_loss = std::nan("");
  // Time between consecutive steps of one thread in this phase (start minus the previous step's
  // end), for non-warm-up steps: where the program spends time outside steps (input, logging).
  RunningStats gap;
  QuantileSketch gap_sketch;
  double gap_sum_ns = 0;
  double gap_step_wall_ns = 0;  // wall time of the steps that had a gap measured before them
};

/// Folds drained records into their phase's aggregates, as the collector does with every step:
/// the warm-up flag, step/CPU time and loss statistics, and the time since the same thread's
/// previous step (between_steps). Collector thread only.
class StepAggregator {
 public:
  /// Returns true when `r` is a warm-up step (kStepWarmup is set in r.flags).
  bool add(PhaseAggregate& p, StepRecord& r, std::uint64_t warmup_steps) noexcept;

 private:
  void note_gap(const StepRecord& r, PhaseAggregate& p, bool warmup) noexcept;
  // Per recording thread: the end (steady ns) and phase of its last step.
  struct LastStep {
    std::int64_t end_ns = -1;
    std::uint16_t phase = 0;
  };
  std::vector<LastStep> last_step_;
};

/// Everything the report builder needs once the collector has stopped.
struct RunState {
  std::vector<PhaseAggregate> phases;  // indexed by phase id
  std::vector<std::string> metric_names;
  std::vector<StepRecord> records;  // retained, in index order
  std::uint64_t steps_recorded = 0;
  std::uint64_t steps_dropped = 0;
  std::uint64_t open_at_finish = 0;
  std::string status = "completed";
  std::int64_t end_ns = 0;
  std::int64_t end_unix_ns = 0;
  double cpu_user_s = 0, cpu_system_s = 0;  // process CPU time during the run
  std::vector<std::string> command_line;
  std::map<std::string, std::string> tags;
  std::uint64_t total_steps = 0;
  /// GPU step timing, when a source was attached: its method and device, and counts.
  struct Gpu {
    std::string method, device, unavailable_reason;
    bool active = false;
    GpuTimingCounts counts;
  };
  std::optional<Gpu> gpu;
};

class SessionImpl {
 public:
  /// Resolves defaults, validates, prepares the output directory and builds components. Throws
  /// Error. Does not start the collector (start() does).
  explicit SessionImpl(Config config);
  ~SessionImpl();

  void start();
  Report finish() noexcept;
  void abort() noexcept { aborted_.store(true, std::memory_order_relaxed); }
  /// From the terminate handler (core/signals.hpp): finish with status "crashed" and `what` in
  /// the diagnostics.
  void crash(const char* what) noexcept;

  HotState* hot() noexcept { return &hot_; }
  RunContext& context() noexcept { return ctx_; }
  const Config& config() const noexcept { return ctx_.config; }

  /// Adds a component while the session runs (before finish()): its start() is called at once on
  /// the calling thread, then it is driven like the built-ins. Ignored (returns false) after
  /// finish() began.
  bool add_component(std::unique_ptr<Component> component) noexcept;

  /// Attaches GPU step timing (once per session, before finish(); ignored when
  /// config.gpu_step_time is off). The collector prepares the source, registers its step hooks
  /// once the device is in use, and resolves events as they complete. Any thread.
  bool attach_gpu_timing(std::unique_ptr<GpuEventSource> source,
                         std::uint32_t pairs = GpuStepTimer::kDefaultPairs) noexcept;

  Phase phase(const char* name) noexcept;
  MetricId metric(const char* name) noexcept;
  void tag(const std::string& key, const std::string& value) noexcept;
  void set_total_steps(std::uint64_t n) noexcept {
    total_steps_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t total_steps() const noexcept {
    return total_steps_.load(std::memory_order_relaxed);
  }

  /// Called by detail::attach_thread().
  ThreadRing* attach_thread() noexcept;

  /// Steps the collector has processed so far (for progress displays; collector thread).
  std::uint64_t steps_collected() const noexcept {
    return steps_collected_.load(std::memory_order_relaxed);
  }

 private:
  void collector_loop() noexcept;
  /// Drains every ring into the aggregates; returns records drained. Collector thread (or finish
  /// after the collector stopped).
  std::uint64_t drain() noexcept;
  void process(StepRecord& r) noexcept;
  /// Collector: prepares GPU timing and resolves completed GPU steps into the aggregates.
  void poll_gpu(bool give_up) noexcept;

  RunContext ctx_;
  HotState hot_;
  std::vector<std::unique_ptr<Component>> components_;
  std::mutex components_mutex_;

  // Rings, one per recording thread.
  std::mutex rings_mutex_;
  std::vector<std::unique_ptr<ThreadRing>> rings_;
  std::vector<std::unique_ptr<StepRecord[]>> ring_storage_;

  // Interned phase and metric names: lock-free reads, locked first insertion.
  std::mutex names_mutex_;
  std::array<std::atomic<const char*>, kMaxPhases> phase_ptrs_{};
  std::array<std::string, kMaxPhases> phase_names_;
  std::atomic<int> phase_count_{0};
  std::array<std::string, kMaxMetrics> metric_names_;
  std::atomic<int> metric_count_{0};

  // Collector.
  std::thread collector_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::vector<StepRecord> batch_;
  StepAggregator aggregator_;

  // Aggregation (collector thread; finish() after join).
  RunState state_;
  std::uint64_t next_index_ = 0;
  std::atomic<std::uint64_t> steps_collected_{0};
  std::atomic<std::uint64_t> total_steps_{0};

  // GPU step timing (attach_gpu_timing): owned here, read by the collector through gpu_.
  std::unique_ptr<GpuStepTimer> gpu_owner_;
  std::atomic<GpuStepTimer*> gpu_{nullptr};

  std::atomic<bool> aborted_{false};
  std::atomic<bool> crashed_{false};
  std::mutex finish_mutex_;
  bool finished_ = false;
  Report report_;
  double cpu_user_start_ = 0, cpu_system_start_ = 0;
};

}  // namespace trainmeter::detail
