// GPU time per step from device events, resolved later on the collector thread (Tracy's GPU
// zones work this way). The training thread records one event at the start and one at the end
// of each step on its current stream (two asynchronous enqueues); the collector asks, without
// blocking, whether they have completed and how far apart they are on the device's clock.
// Never a device, stream or event synchronisation on the training thread.
//
// The event pool is a fixed array of pairs, claimed round-robin by the training thread with one
// atomic compare-exchange and released by the collector once a pair is resolved. A step whose
// pair is still in flight (the device more than `pairs` steps behind) or whose event record
// fails gets no GPU time (null in the report) and is counted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trainmeter/step.hpp"

namespace trainmeter::detail {

/// A pool of device timing events. Implemented with CUDA events by trainmeter::torch
/// (src/torch/cuda_events.cpp); tests use a fake with a scripted device clock.
class GpuEventSource {
 public:
  enum class Prepare { kReady, kNotYet, kUnavailable };
  enum class Status { kReady, kPending, kError };

  virtual ~GpuEventSource() = default;
  /// Method name for the report, e.g. "cuda_event".
  virtual const char* name() const noexcept = 0;
  /// Collector thread, every tick until it answers kReady or kUnavailable: creates `events`
  /// events once the device is in use (for CUDA: once the program created a context, so that a
  /// CPU-only program on a GPU machine never gets one from us). kUnavailable: reason() says why.
  virtual Prepare prepare(std::uint32_t events) noexcept = 0;
  /// The device the events belong to ("cuda:0"), once prepared.
  virtual std::string device() const = 0;
  /// Why prepare() answered kUnavailable, or what the last error was.
  virtual std::string reason() const = 0;
  /// Training thread: enqueues event `e` on the calling thread's current stream. Asynchronous.
  virtual bool record(std::uint32_t e) noexcept = 0;
  /// Collector thread: has event `e` completed? Never blocks.
  virtual Status query(std::uint32_t e) noexcept = 0;
  /// Collector thread: device time from event `a` to event `b`, in ns (kPending while either
  /// has not completed).
  virtual Status elapsed_ns(std::uint32_t a, std::uint32_t b, std::int64_t& ns) noexcept = 0;
};

/// A step waiting for its GPU time.
struct GpuPending {
  std::uint32_t pair;
  std::int64_t wall_ns;  ///< the step's host time (for busy fractions of steps not retained)
  std::uint16_t phase;
  bool warmup;
  std::size_t retained;  ///< index in the retained records, or kNotRetained
  static constexpr std::size_t kNotRetained = ~std::size_t{0};
};

/// Counts for the report's run.gpu_timing section.
struct GpuTimingCounts {
  std::uint64_t timed = 0;           ///< steps with a GPU time
  std::uint64_t before_active = 0;   ///< steps recorded before the device was in use
  std::uint64_t pool_exhausted = 0;  ///< no free event pair (device far behind)
  std::uint64_t record_errors = 0;   ///< event record failed on the training thread
  std::uint64_t query_errors = 0;    ///< the device reported an error for the events
  std::uint64_t unresolved = 0;      ///< events not complete when the report was written
  std::int64_t busy_ns = 0;          ///< sum of GPU step times (warm-up included)
};

/// The pool, the step hooks that use it and the resolution of pending steps. Owned by the
/// session; hooks are registered once the source is prepared.
class GpuStepTimer {
 public:
  static constexpr std::uint32_t kDefaultPairs = 1024;

  GpuStepTimer(std::unique_ptr<GpuEventSource> source, HotState* hot,
               std::uint32_t pairs = kDefaultPairs);
  ~GpuStepTimer();
  GpuStepTimer(const GpuStepTimer&) = delete;
  GpuStepTimer& operator=(const GpuStepTimer&) = delete;

  /// Collector: prepares the source while it is not ready; true once steps are being timed.
  bool poll_prepare() noexcept;
  bool active() const noexcept { return active_.load(std::memory_order_acquire); }
  bool unavailable() const noexcept { return unavailable_; }
  const GpuEventSource& source() const noexcept { return *source_; }

  /// Collector: a drained record. Records with an event pair become pending.
  void track(const StepRecord& r, bool warmup, std::size_t retained) noexcept;

  /// Collector: resolves every pending step whose events completed (or failed), in order of
  /// recording per pair, and calls `done(pending, gpu_ns)` (-1 when it failed). With
  /// `give_up`, steps still pending are reported as unresolved (-1) too.
  void resolve(const std::function<void(const GpuPending&, std::int64_t)>& done,
               bool give_up) noexcept;

  std::size_t pending() const noexcept { return pending_.size(); }
  /// Counts; read after the collector stopped.
  GpuTimingCounts counts() const noexcept;

 private:
  static std::uint32_t on_begin(void* self) noexcept;
  static void on_end(void* self, std::uint32_t token, StepRecord& r) noexcept;
  void release(std::uint32_t pair) noexcept;

  enum : std::uint8_t { kFree = 0, kBusy = 1 };

  std::unique_ptr<GpuEventSource> source_;
  HotState* hot_;
  const std::uint32_t pairs_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> state_;
  std::atomic<std::uint64_t> next_{0};
  std::atomic<bool> active_{false};
  bool unavailable_ = false;
  StepHooks hooks_{};
  int hook_slot_ = -1;
  // Training thread counters.
  std::atomic<std::uint64_t> exhausted_{0};
  std::atomic<std::uint64_t> record_errors_{0};
  // Collector only.
  std::vector<GpuPending> pending_;
  GpuTimingCounts counts_;
};

}  // namespace trainmeter::detail
