// trainmeter::torch op accounting: where a step's time goes, per libtorch op, with FLOPs for
// matmul-like and convolution ops. Off by default (config key `ops`, TRAINMETER_OPS=1).
//
// Link trainmeter::torch. This header does not include libtorch.
#pragma once

#include <memory>

#include "trainmeter/session.hpp"
#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

/// Op accounting on one thread, for as long as the object lives.
///
/// Steps timed on the creating thread are counted (all phases together; nested scopes count as
/// one). After config.warmup_steps such steps, the first and then every config.ops_every-th step
/// is *accounted*: at the step's start a thread-local libtorch RecordFunction callback is added,
/// at its end removed, so unselected steps pay one counter increment and nothing per op. While
/// installed, the callback records per op name (aten ops and autograd nodes, RecordScope
/// FUNCTION and BACKWARD_FUNCTION): calls, self and total host time (steady clock around the
/// op on the training thread, nesting resolved with a fixed stack), and FLOPs from input shapes
/// for mm, addmm, bmm, matmul, linear, conv1d/2d/3d, convolution, _convolution and
/// convolution_backward. The adding and removing happen outside the step's timed interval; the
/// per-op callback cost (a few hundred ns per op, see docs/performance.md) is inside accounted
/// steps, which the report lists (steps[].ops_accounted).
///
/// Ops run on other threads (autograd's CUDA device threads, at::launch tasks) are counted in
/// ops.ops_on_other_threads but not broken down.
///
/// A step is never accounted while a libtorch profiler is active on the thread: it is skipped
/// and counted (ops.steps_skipped_profiler, plus a diagnostic "skipped").
///
/// Create it on the training thread after the Session; destroy it on the same thread. Movable,
/// not copyable. It may outlive the session.
class TRAINMETER_EXPORT OpAccounting {
 public:
  OpAccounting() noexcept = default;
  OpAccounting(OpAccounting&& other) noexcept;
  OpAccounting& operator=(OpAccounting&& other) noexcept;
  OpAccounting(const OpAccounting&) = delete;
  OpAccounting& operator=(const OpAccounting&) = delete;
  ~OpAccounting();

  /// True when accounting was set up on the creating thread.
  bool active() const noexcept { return installed_ != nullptr; }
  /// Stops accounting now (on the creating thread). Further calls do nothing.
  void reset() noexcept;

  struct Installed;  // internal

 private:
  friend TRAINMETER_EXPORT OpAccounting account_ops(Session& session) noexcept;
  explicit OpAccounting(std::unique_ptr<Installed> installed) noexcept;
  std::unique_ptr<Installed> installed_;
};

/// Starts op accounting on the calling thread when config.ops is true (see OpAccounting); the
/// report then gets its `ops` section. Returns an inactive object when config.ops is false, the
/// session is disabled or finished, or accounting already runs for this session (a diagnostic
/// says so). A program can call it unconditionally and let TRAINMETER_OPS decide. Never throws.
TRAINMETER_EXPORT OpAccounting account_ops(Session& session) noexcept;

}  // namespace torch
TRAINMETER_END_NAMESPACE
