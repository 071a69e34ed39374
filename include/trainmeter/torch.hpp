// trainmeter::torch: the libtorch integration. instrument() starts tensor-byte tracking through
// libtorch's allocator reporter hook, op accounting and CUDA-event step times under one guard;
// CUDA caching-allocator statistics and the model footprint come with it.
//
// Link trainmeter::torch. This is the only public header of trainmeter that refers to libtorch;
// it only forward-declares torch::nn::Module, so including it costs nothing beyond <torch/...>
// headers the program already includes. Inside namespace trainmeter::torch, libtorch is
// `::torch`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "trainmeter/session.hpp"
#include "trainmeter/version.hpp"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

/// Sizes of a module's parameters and buffers (recursively, each distinct tensor counted once).
/// Element counts are numel(); bytes are numel() x element size (the logical size, also for
/// non-contiguous tensors). Undefined tensors are skipped (libtorch's named_parameters() already
/// omits them; `undefined_tensors` counts any that an accessor still returns).
struct ModelFootprint {
  std::int64_t parameters = 0;  ///< elements in parameters
  std::int64_t parameter_tensors = 0;
  std::int64_t trainable_parameters = 0;  ///< elements with requires_grad
  std::int64_t frozen_parameters = 0;     ///< elements without requires_grad
  std::int64_t buffers = 0;               ///< elements in buffers
  std::int64_t buffer_tensors = 0;
  std::int64_t parameter_bytes = 0;
  std::int64_t trainable_parameter_bytes = 0;
  std::int64_t buffer_bytes = 0;
  std::int64_t total_bytes = 0;  ///< parameter_bytes + buffer_bytes
  /// Bytes of parameters and buffers by dtype name ("float32", "float16", "bfloat16", "int64"...).
  std::map<std::string, std::int64_t> bytes_by_dtype;
  std::int64_t zero_parameters = 0;  ///< parameter elements exactly equal to 0
  /// zero_parameters / parameters (sparsity, e.g. after pruning); 0 when there are none.
  double zero_fraction = 0;
  /// Optimizer state estimate: SGD with momentum keeps one buffer per trainable parameter
  /// (= trainable_parameter_bytes); Adam keeps two (exp_avg, exp_avg_sq). Per-parameter step
  /// counters and amsgrad's third buffer are not included.
  std::int64_t sgd_momentum_state_bytes = 0;
  std::int64_t adam_state_bytes = 0;
  std::int64_t undefined_tensors = 0;  ///< parameters/buffers registered but undefined
  std::int64_t shared_tensors = 0;     ///< registrations skipped because seen before (tied weights)
};

/// Computes the footprint of `module`. May allocate temporaries (the zero count); call it outside
/// the timed steps. Throws what libtorch throws (it does not for well-formed modules).
TRAINMETER_EXPORT ModelFootprint describe(const ::torch::nn::Module& module);

/// Computes the footprint and stores it in the session's report (`model`; the last call wins;
/// `name` becomes model.name). Never throws: problems become diagnostics. Ignored on a disabled
/// or finished session.
TRAINMETER_EXPORT ModelFootprint describe(Session& session, const ::torch::nn::Module& module,
                                          const std::string& name = "") noexcept;

/// What instrument() starts. Each part also follows its configuration key: a part whose key is
/// off stays off (TRAINMETER_OPS=1 turns op accounting on without a rebuild).
struct InstrumentOptions {
  /// Tensor-memory tracking (config.track_tensor_memory, on by default): libtorch's allocators
  /// report every allocation and free made on the owning thread (and on threads libtorch hands
  /// its thread-local state to: autograd's device threads, at::launch) to the session. Each step
  /// record then carries `peak_tensor_bytes` (the highest tensor bytes live during the step) and
  /// the report gets `memory.peak_tensor_bytes` per device. Allocations made by OpenMP workers
  /// inside at::parallel_for are not seen (libtorch does not pass thread-local state to them);
  /// outputs of parallel ops are allocated on the calling thread and are seen. With a libtorch
  /// built with CUDA, each step also gets the CUDA tensor peak of the device the program
  /// allocated on most recently (`peak_cuda_tensor_bytes`), from the same reporter: the caching
  /// allocator's own peak counters, which user code may read, are never reset. Do not start a
  /// libtorch profiler while it runs if you need its numbers: the profiler takes the same
  /// thread-local slot for its duration (nothing breaks; events in that window go to the
  /// profiler only).
  bool memory = true;
  /// Op accounting (config.ops, off by default): per libtorch op, calls, self and total host
  /// time and FLOPs on selected steps (trainmeter/torch_ops.hpp says how steps are selected).
  bool ops = true;
  /// GPU step time from CUDA events (config.gpu_step_time; see time_gpu_steps()).
  bool gpu_time = true;
};

/// The libtorch integration on one thread, for as long as the object lives: one guard for every
/// part instrument() started. Parts are independent of each other and of the order they were
/// started or stopped in (each has its own step-hook slot).
///
/// Create it on the training thread after the Session and destroy it on the same thread (it is
/// movable, not copyable; destroying it on another thread leaves the memory reporter installed on
/// the creating thread and records a diagnostic). It may outlive the session.
class TRAINMETER_EXPORT Instrumentation {
 public:
  Instrumentation() noexcept;
  Instrumentation(Instrumentation&& other) noexcept;
  Instrumentation& operator=(Instrumentation&& other) noexcept;
  Instrumentation(const Instrumentation&) = delete;
  Instrumentation& operator=(const Instrumentation&) = delete;
  ~Instrumentation();

  /// True when any part runs.
  bool active() const noexcept { return memory_active() || ops_active(); }
  /// True when tensor-memory tracking was installed on the creating thread.
  bool memory_active() const noexcept;
  /// True when op accounting was set up on the creating thread.
  bool ops_active() const noexcept;
  /// Stops every part now (on the creating thread). Further calls do nothing.
  void reset() noexcept;
  /// Stops one part now; the other keeps running.
  void reset_memory() noexcept;
  void reset_ops() noexcept;

  struct Installed;  // internal

 private:
  friend TRAINMETER_EXPORT Instrumentation instrument(Session& session,
                                                      const InstrumentOptions& options) noexcept;
  explicit Instrumentation(std::unique_ptr<Installed> installed) noexcept;
  std::unique_ptr<Installed> installed_;
};

/// Starts the parts `options` selects on the calling thread (see InstrumentOptions):
/// `auto tm = trainmeter::torch::instrument(session);` before the training loop. A part that
/// cannot start is skipped with a diagnostic naming why: the session is disabled or finished,
/// its configuration key is off, a libtorch profiler is active on this thread, another reporter
/// occupies libtorch's slot, or the part already runs for this session on some thread (the first
/// one keeps running). Never throws.
[[nodiscard]] TRAINMETER_EXPORT Instrumentation
instrument(Session& session, const InstrumentOptions& options = InstrumentOptions()) noexcept;

/// Tensor-memory tracking alone (the guard's older name).
using MemoryTracking = Instrumentation;

/// instrument(session) with tensor memory and GPU step time only (InstrumentOptions::memory).
[[nodiscard]] TRAINMETER_EXPORT Instrumentation track_memory(Session& session) noexcept;

/// GPU time per step from CUDA events (report: steps[].gpu_ns, phases.*.gpu_time_ns,
/// run.gpu_timing). Two events from a pre-created pool are enqueued on the training thread's
/// current CUDA stream at each step's start and end; the collector thread resolves them later
/// with cudaEventQuery/cudaEventElapsedTime. Nothing synchronises the device, a stream or an
/// event on the training thread. Timing starts once the program has a CUDA context (a CPU-only
/// program on a GPU machine is never given one) and lasts until finish(). A step whose events
/// cannot be resolved gets null and a counted diagnostic.
///
/// Returns true when this call attached the timing; false without a CUDA build of libtorch,
/// with config.gpu_step_time off, on a disabled or finished session, or when already attached
/// (instrument() attaches it too). Any thread. Never throws.
TRAINMETER_EXPORT bool time_gpu_steps(Session& session) noexcept;

}  // namespace torch
TRAINMETER_END_NAMESPACE
