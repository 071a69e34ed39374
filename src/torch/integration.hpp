// Internal: the parts of trainmeter::torch::Instrumentation (include/trainmeter/torch.hpp). One
// guard holds every part started on its thread; each part's start and stop live with the part
// (memory.cpp, ops.cpp), and instrument.cpp composes them.
#pragma once

#include <memory>
#include <thread>

#include "trainmeter/torch.hpp"

namespace trainmeter::detail {

struct TorchState;
struct OpsState;

}  // namespace trainmeter::detail

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

struct Instrumentation::Installed {
  std::thread::id owner = std::this_thread::get_id();
  std::shared_ptr<detail::TorchState> memory;  ///< set while tensor-memory tracking is on
  std::shared_ptr<detail::OpsState> ops;       ///< set while op accounting is on
};

}  // namespace torch
TRAINMETER_END_NAMESPACE

namespace trainmeter::detail {

/// Starts tensor-memory tracking on the calling thread into `inst.memory`; false (with a
/// diagnostic where something prevented it) when it did not start. Never throws.
bool start_memory_tracking(Session& session, torch::Instrumentation::Installed& inst) noexcept;
/// Stops it (on the owner thread; elsewhere a diagnostic) and clears `inst.memory`.
void stop_memory_tracking(torch::Instrumentation::Installed& inst) noexcept;

/// Starts op accounting on the calling thread into `inst.ops` (config.ops must be on). Never
/// throws.
bool start_op_accounting(Session& session, torch::Instrumentation::Installed& inst) noexcept;
/// Stops it (removes its step hooks; the component keeps what was counted) and clears `inst.ops`.
void stop_op_accounting(torch::Instrumentation::Installed& inst) noexcept;

}  // namespace trainmeter::detail
