// Bookkeeping behind trainmeter::torch's allocator reporter: current and peak tensor bytes per
// device, in relaxed atomics. Torch-free so that tests and benchmarks can drive it directly.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "trainmeter/step.hpp"

namespace trainmeter::detail {

/// Raises `peak` to `value` if larger (relaxed CAS loop; lost races retry only while larger).
inline void raise_peak(std::atomic<std::int64_t>& peak, std::int64_t value) noexcept {
  std::int64_t p = peak.load(std::memory_order_relaxed);
  while (value > p && !peak.compare_exchange_weak(p, value, std::memory_order_relaxed)) {
  }
}

/// Tensor bytes per device as reported by libtorch's allocators to the installed reporter.
///
/// Every figure counts bytes allocated *while the reporter was installed* on the allocating
/// thread and not yet freed: c10 only reports a free when it saw the matching allocation, so
/// tensors that existed before installation never make the count negative.
/// Thread-safety: every member may be updated from any thread at once (allocator callbacks run
/// on the training thread, autograd's device threads and at::launch tasks).
class TensorMemoryState {
 public:
  static constexpr int kMaxCudaDevices = 64;

  struct Device {
    std::atomic<std::int64_t> current{0};
    std::atomic<std::int64_t> peak{0};       // since tracking began
    std::atomic<std::int64_t> step_peak{0};  // since the current step began (step hooks reset it)
    std::atomic<std::uint64_t> events{0};
  };

  /// One allocator event: `bytes` > 0 allocated, < 0 freed. CPU events also raise the per-step
  /// peak that StepScope resets and reads (HotState::tensor points at cpu_step).
  void record_cpu(std::int64_t bytes) noexcept {
    // The running sum is ours, not c10's total_allocated argument: that total is c10's
    // process-wide CPU figure, which includes allocations made before installation and by
    // threads we do not track, so it would not describe this run's tensors.
    const std::int64_t now = cpu_step.current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    raise_peak(cpu_step.peak, now);
    raise_peak(cpu_run_peak_, now);
    cpu_events_.fetch_add(1, std::memory_order_relaxed);
  }
  void record_cuda(int index, std::int64_t bytes) noexcept {
    if (index < 0 || index >= kMaxCudaDevices) {
      other_events_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Device& d = cuda_[static_cast<std::size_t>(index)];
    const std::int64_t now = d.current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    raise_peak(d.peak, now);
    raise_peak(d.step_peak, now);
    d.events.fetch_add(1, std::memory_order_relaxed);
    if (last_cuda_device_.load(std::memory_order_relaxed) != index)
      last_cuda_device_.store(index, std::memory_order_relaxed);
  }
  /// The CUDA device of the most recent CUDA allocator event (-1: none yet): the device whose
  /// per-step peak the step hooks track.
  int last_cuda_device() const noexcept {
    return last_cuda_device_.load(std::memory_order_relaxed);
  }
  Device& cuda_mut(int index) noexcept { return cuda_[static_cast<std::size_t>(index)]; }
  /// Events on devices we do not break down (MPS, XPU, ...).
  void record_other() noexcept { other_events_.fetch_add(1, std::memory_order_relaxed); }
  void record_out_of_memory() noexcept { oom_events_.fetch_add(1, std::memory_order_relaxed); }

  std::int64_t cpu_current() const noexcept {
    return cpu_step.current.load(std::memory_order_relaxed);
  }
  std::int64_t cpu_peak() const noexcept { return cpu_run_peak_.load(std::memory_order_relaxed); }
  std::uint64_t cpu_events() const noexcept { return cpu_events_.load(std::memory_order_relaxed); }
  const Device& cuda(int index) const noexcept { return cuda_[static_cast<std::size_t>(index)]; }
  std::uint64_t other_events() const noexcept {
    return other_events_.load(std::memory_order_relaxed);
  }
  std::uint64_t oom_events() const noexcept { return oom_events_.load(std::memory_order_relaxed); }

  /// The per-step CPU counters the step scope resets (at step start) and reads (at step end).
  TensorCounters cpu_step;

 private:
  std::atomic<std::int64_t> cpu_run_peak_{0};
  std::atomic<std::uint64_t> cpu_events_{0};
  std::atomic<std::uint64_t> other_events_{0};
  std::atomic<std::uint64_t> oom_events_{0};
  std::atomic<int> last_cuda_device_{-1};
  std::array<Device, kMaxCudaDevices> cuda_{};
};

}  // namespace trainmeter::detail
