// Internal: the per-session state trainmeter::torch shares between the allocator reporter, the
// MemoryTracking guards, describe() and the component that writes the numbers into the report.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/component.hpp"
#include "torch/tensor_memory.hpp"

namespace trainmeter::detail {

class SessionImpl;
struct TorchState;

/// The state of `session`, created (with its component registered in the session) on first use.
/// nullptr when the session is disabled, finished or out of memory.
std::shared_ptr<TorchState> torch_state_for(SessionImpl* session) noexcept;

/// Makes the component for a state (exposed for tests: drive it without a session).
std::unique_ptr<Component> make_torch_memory_component(std::shared_ptr<TorchState> state,
                                                       RunContext* ctx, HotState* hot);

/// A fresh, unattached state (tests and benchmarks: reporter without a session).
std::shared_ptr<TorchState> make_torch_state();

/// The state's tensor counters.
TensorMemoryState& tensor_memory(TorchState& state) noexcept;

/// Installs the state's reporter on the calling thread (as MemoryTracking does, without a
/// session); returns false when the slot is taken or a profiler is active. `uninstall` pops it
/// if it is the innermost entry.
bool install_reporter(TorchState& state) noexcept;
bool uninstall_reporter(TorchState& state) noexcept;

}  // namespace trainmeter::detail
