// trainmeter: the step scope, the only trainmeter code on the training thread.
//
// This header includes only <atomic>, <chrono>, <cstdint>, <limits>, <type_traits> and
// <time.h>: a translation unit that times steps compiles as fast as one that does not.
//
// Cost model (measured in bench/, figures in docs/performance.md): disabled, one predictable
// branch; enabled, two steady_clock reads and one write of a 128-byte record into a
// pre-allocated per-thread ring. No allocation, no lock, no syscall beyond the clocks, no I/O.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

class Session;

/// A step phase ("train", "eval", "infer", or any name), interned by Session::phase().
struct Phase {
  std::uint16_t id = 0;  ///< 0 is always "train"
};

/// A user metric column, interned by Session::metric(). At most kMaxMetrics per session.
struct MetricId {
  std::uint16_t index = 0xffff;  ///< 0xffff: invalid (set_metric ignores it)
};

inline constexpr int kMaxMetrics = 4;
inline constexpr int kMaxPhases = 32;

namespace detail {

/// Nanoseconds on the steady clock.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU time consumed by the calling thread, in ns (a syscall: ~0.3 us).
inline std::int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

/// One recorded step as it travels from the training thread to the collector. Fixed size; the
/// collector assigns the step index and the warm-up flag.
struct alignas(64) StepRecord {
  std::int64_t start_ns;           ///< steady clock at scope entry (absolute)
  std::int64_t wall_ns;            ///< scope duration
  std::int64_t cpu_ns;             ///< thread CPU time in the scope; -1 when not measured
  std::int64_t peak_tensor_bytes;  ///< libtorch CPU tensor-byte peak in the scope; -1 not measured
  double loss;                     ///< NaN when not set
  double metrics[kMaxMetrics];     ///< NaN when not set
  std::uint64_t samples;
  std::uint64_t tokens;
  std::uint64_t seq;  ///< per-thread sequence number
  /// Device time between the step's two GPU events, in ns; -1 until resolved or not measured.
  /// Written by the collector (never on the training thread: the events complete later).
  std::int64_t gpu_ns;
  /// CUDA tensor-byte peak of device `cuda_device` in the scope; -1 when not measured.
  std::int64_t cuda_peak_tensor_bytes;
  std::uint32_t gpu_slot;  ///< GPU event pair of this step (kNoGpuSlot: none)
  std::uint16_t phase;
  std::uint16_t thread;      ///< ring index (one ring per recording thread)
  std::uint32_t flags;       ///< reserved for the collector (warm-up, ops-accounted)
  std::int16_t cuda_device;  ///< device of cuda_peak_tensor_bytes; -1 none
};
static_assert(sizeof(StepRecord) == 128, "StepRecord must stay two cache lines");
inline constexpr std::uint32_t kNoGpuSlot = 0xffffffffu;
/// gpu_slot of a step whose GPU timing failed on the training thread (pool exhausted, event
/// record error): reported null and counted.
inline constexpr std::uint32_t kGpuSlotFailed = 0xfffffffeu;

/// Current and peak tensor bytes, maintained by trainmeter::torch's allocator reporter.
struct TensorCounters {
  std::atomic<std::int64_t> current{0};
  std::atomic<std::int64_t> peak{0};
  /// Peak tracking restarts from the current level (called at step start).
  void reset_peak() noexcept {
    peak.store(current.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
};

/// Callbacks at step boundaries, installed by integrations (GPU events, CUDA tensor peaks, op
/// accounting) into one of kMaxStepHooks slots of a session. on_begin runs before the start clock
/// read and returns a token that on_end receives, after the end clock read, with the record
/// about to be published. Both run on the training thread: no lock, no allocation, no I/O.
/// A StepHooks object must stay alive as long as any scope that called its on_begin may run.
struct StepHooks {
  std::uint32_t (*on_begin)(void* ctx) noexcept;
  void (*on_end)(void* ctx, std::uint32_t token, StepRecord& record) noexcept;
  void* ctx;
};
inline constexpr int kMaxStepHooks = 4;

/// Single-producer (the owning thread), single-consumer (the collector) ring of step records.
class ThreadRing {
 public:
  static constexpr std::uint64_t kCapacity = 16384;  // 2 MiB per recording thread

  ThreadRing(std::uint16_t index, StepRecord* storage) noexcept : index_(index), slots_(storage) {}

  /// Producer: a slot to fill, or nullptr when the ring is full (the step is counted dropped).
  StepRecord* begin_write() noexcept {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - cached_tail_ >= kCapacity) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (h - cached_tail_ >= kCapacity) {
        dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return nullptr;
      }
    }
    return &slots_[h & (kCapacity - 1)];
  }
  /// Producer: publishes the slot returned by begin_write().
  void commit() noexcept {
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  std::uint64_t next_seq() const noexcept {
    return head_.load(std::memory_order_relaxed) + dropped_.load(std::memory_order_relaxed);
  }
  std::uint16_t index() const noexcept { return index_; }

  /// Producer: scopes currently open on this thread (read by finish()). enter() is a seq_cst
  /// read-modify-write: with finish()'s seq_cst store of `active` and seq_cst reads of the open
  /// counts, the single total order of seq_cst operations guarantees that either finish() sees
  /// this scope open or the scope sees `active` false (a handshake ThreadSanitizer models, which
  /// it does not for std::atomic_thread_fence).
  void enter() noexcept { open_.fetch_add(1, std::memory_order_seq_cst); }
  void leave() noexcept { open_.fetch_sub(1, std::memory_order_release); }

  /// Consumer: copies out up to `max` published records; returns how many.
  template <class F>
  std::uint64_t drain(F&& sink) noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    const std::uint64_t h = head_.load(std::memory_order_acquire);
    for (std::uint64_t i = t; i < h; ++i) sink(slots_[i & (kCapacity - 1)]);
    tail_.store(h, std::memory_order_release);
    return h - t;
  }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  int open_scopes() const noexcept { return open_.load(std::memory_order_seq_cst); }

 private:
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t cached_tail_ = 0;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<int> open_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::uint16_t index_;
  StepRecord* slots_;
};

/// The part of a Session the step path reads. Owned by the Session; stable address.
struct HotState {
  std::atomic<bool> active{false};  ///< true between start and finish()
  bool step_cpu_time = false;
  std::uint64_t id = 0;   ///< unique per Session in the process (never 0)
  void* owner = nullptr;  ///< the detail::SessionImpl
  std::atomic<TensorCounters*> tensor{nullptr};
  /// Bit i set: hook_slots[i] holds hooks. Checked first, so the default path pays one load.
  std::atomic<std::uint32_t> hook_mask{0};
  std::atomic<const StepHooks*> hook_slots[kMaxStepHooks] = {};
};

/// Registers `hooks` in a free slot of `hot`; returns the slot (the handle for
/// remove_step_hooks), or -1 when every slot is taken. Any thread; order-independent.
inline int add_step_hooks(HotState& hot, const StepHooks* hooks) noexcept {
  for (int i = 0; i < kMaxStepHooks; ++i) {
    const StepHooks* expected = nullptr;
    if (hot.hook_slots[i].compare_exchange_strong(expected, hooks, std::memory_order_acq_rel)) {
      hot.hook_mask.fetch_or(1u << i, std::memory_order_release);
      return i;
    }
  }
  return -1;
}
/// Removes the hooks registered in `slot` (if they are `hooks`). Scopes that already called
/// their on_begin still call their on_end.
inline void remove_step_hooks(HotState& hot, int slot, const StepHooks* hooks) noexcept {
  if (slot < 0 || slot >= kMaxStepHooks) return;
  const StepHooks* expected = hooks;
  if (hot.hook_slots[slot].compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel))
    hot.hook_mask.fetch_and(~(1u << slot), std::memory_order_release);
}

/// Samples from any integer type (libtorch sizes are int64_t): negative counts become 0.
template <class N>
constexpr std::uint64_t to_samples(N n) noexcept {
  static_assert(std::is_integral_v<N>, "step(samples): samples must be an integer");
  if constexpr (std::is_signed_v<N>) {
    return n < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(n);
  } else {
    return n;
  }
}

/// The calling thread's ring for the session it last recorded into.
struct TlsRing {
  std::uint64_t session_id = 0;
  ThreadRing* ring = nullptr;
};
inline TlsRing& tls_ring() noexcept {
  static thread_local TlsRing slot;
  return slot;
}

/// Out of line, once per thread per session: allocates and registers the thread's ring.
/// Returns nullptr if the session has finished or no more rings can be made.
TRAINMETER_EXPORT ThreadRing* attach_thread(HotState* hot) noexcept;

}  // namespace detail

/// RAII timer of one step. Obtained from Session::step(); records on destruction (or stop()).
/// Not copyable or movable: keep it on the stack of the thread that runs the step. Thread-safe in
/// the sense that any number of threads may each hold their own scopes at once.
class StepScope {
 public:
  StepScope() noexcept = default;
  StepScope(detail::HotState* hot, Phase phase, std::uint64_t samples) noexcept {
    if (hot == nullptr || !hot->active.load(std::memory_order_relaxed)) return;
    detail::TlsRing& tls = detail::tls_ring();
    detail::ThreadRing* ring = tls.session_id == hot->id ? tls.ring : detail::attach_thread(hot);
    if (ring == nullptr) return;
    // Pairs with finish(), which clears `active` (seq_cst) and then reads every ring's open
    // count (seq_cst): either finish() sees this scope open (and waits for it to close) or this
    // scope sees `active` false and records nothing. No step is lost unseen.
    ring->enter();
    if (!hot->active.load(std::memory_order_seq_cst)) {
      ring->leave();
      return;
    }
    ring_ = ring;
    hot_ = hot;
    phase_ = phase.id;
    samples_ = samples;
    tokens_ = 0;
    loss_ = std::numeric_limits<double>::quiet_NaN();
    for (double& m : metrics_) m = std::numeric_limits<double>::quiet_NaN();
    if (detail::TensorCounters* tc = hot->tensor.load(std::memory_order_relaxed)) tc->reset_peak();
    hook_mask_ = hot->hook_mask.load(std::memory_order_acquire);
    if (hook_mask_ != 0) begin_hooks(*hot);
    cpu_start_ = hot->step_cpu_time ? detail::thread_cpu_ns() : -1;
    start_ns_ = detail::now_ns();
  }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;
  ~StepScope() { stop(); }

  /// Records the step now instead of at scope exit. Further calls do nothing.
  void stop() noexcept {
    if (ring_ == nullptr) return;
    const std::int64_t end = detail::now_ns();
    const std::int64_t cpu_end = cpu_start_ >= 0 ? detail::thread_cpu_ns() : -1;
    detail::ThreadRing* ring = ring_;
    ring_ = nullptr;
    detail::StepRecord* r = ring->begin_write();
    if (r == nullptr) {
      ring->leave();
      return;
    }
    r->start_ns = start_ns_;
    r->wall_ns = end - start_ns_;
    r->cpu_ns = (cpu_start_ >= 0 && cpu_end >= 0) ? cpu_end - cpu_start_ : -1;
    detail::TensorCounters* tc = hot_->tensor.load(std::memory_order_relaxed);
    r->peak_tensor_bytes = tc != nullptr ? tc->peak.load(std::memory_order_relaxed) : -1;
    r->gpu_ns = -1;
    r->cuda_peak_tensor_bytes = -1;
    r->gpu_slot = detail::kNoGpuSlot;
    r->cuda_device = -1;
    r->loss = loss_;
    for (int i = 0; i < kMaxMetrics; ++i) r->metrics[i] = metrics_[i];
    r->samples = samples_;
    r->tokens = tokens_;
    r->seq = ring->next_seq();
    r->phase = phase_;
    r->thread = ring->index();
    r->flags = 0;
    if (hook_mask_ != 0) end_hooks(*r);
    ring->commit();
    ring->leave();
  }

  /// Optional per-step values. Ignored on a disabled or already stopped scope.
  void set_loss(double loss) noexcept { loss_ = loss; }
  void set_samples(std::uint64_t samples) noexcept { samples_ = samples; }
  void set_tokens(std::uint64_t tokens) noexcept { tokens_ = tokens; }
  void set_metric(MetricId id, double value) noexcept {
    if (id.index < kMaxMetrics) metrics_[id.index] = value;
  }
  /// True when this scope is recording.
  bool active() const noexcept { return ring_ != nullptr; }

 private:
  void begin_hooks(detail::HotState& hot) noexcept {
    for (int i = 0; i < detail::kMaxStepHooks; ++i) {
      hooks_[i] = nullptr;
      if ((hook_mask_ & (1u << i)) == 0) continue;
      const detail::StepHooks* h = hot.hook_slots[i].load(std::memory_order_acquire);
      if (h == nullptr) continue;
      hooks_[i] = h;
      hook_tokens_[i] = h->on_begin(h->ctx);
    }
  }
  void end_hooks(detail::StepRecord& r) noexcept {
    // Reverse order: a hook that opened first closes last.
    for (int i = detail::kMaxStepHooks - 1; i >= 0; --i)
      if ((hook_mask_ & (1u << i)) != 0 && hooks_[i] != nullptr)
        hooks_[i]->on_end(hooks_[i]->ctx, hook_tokens_[i], r);
  }

  detail::ThreadRing* ring_ = nullptr;
  detail::HotState* hot_ = nullptr;
  std::int64_t start_ns_;
  std::int64_t cpu_start_;
  std::uint64_t samples_;
  std::uint64_t tokens_;
  double loss_;
  double metrics_[kMaxMetrics];
  std::uint16_t phase_;
  std::uint32_t hook_mask_ = 0;
  const detail::StepHooks* hooks_[detail::kMaxStepHooks];
  std::uint32_t hook_tokens_[detail::kMaxStepHooks];
};

TRAINMETER_END_NAMESPACE
