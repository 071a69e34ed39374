// trainmeter::torch op accounting: where a step's time goes, per libtorch op, with FLOPs for
// matmul-like and convolution ops. Off by default (config key `ops`, TRAINMETER_OPS=1).
//
// Link trainmeter::torch. This header does not include libtorch. Its guard is the one of
// trainmeter/torch.hpp: trainmeter::torch::instrument() starts op accounting too.
#pragma once

#include <memory>

#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"
#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

/// Op accounting on one thread (InstrumentOptions::ops), for as long as its guard lives.
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
/// The guard is trainmeter::torch::Instrumentation (trainmeter/torch.hpp); instrument() starts op
/// accounting together with tensor-memory tracking, account_ops() alone.
/// Op accounting alone (the guard's older name).
using OpAccounting = Instrumentation;

/// Starts op accounting alone on the calling thread when config.ops is true: instrument() with
/// InstrumentOptions::ops only. The report then gets its `ops` section. Returns an inactive
/// guard when config.ops is false, the session is disabled or finished, or accounting already
/// runs for this session (a diagnostic says so). A program can call it unconditionally and let
/// TRAINMETER_OPS decide. Never throws.
TRAINMETER_EXPORT Instrumentation account_ops(Session& session) noexcept;

}  // namespace torch
TRAINMETER_END_NAMESPACE
