// Internal: the CUDA side of GPU step timing (src/torch/cuda_events.cpp).
#pragma once

#include <string>

namespace trainmeter::detail {

class SessionImpl;

/// Attaches CUDA-event step timing to `session` (when built with CUDA and config.gpu_step_time);
/// the collector starts it once the program has a CUDA context. False when not attached now
/// (no CUDA build, disabled by configuration, or already attached).
bool start_gpu_timing(SessionImpl* session) noexcept;

/// The CUDA runtime's version ("13.2"), or "" without CUDA.
std::string cuda_runtime_version() noexcept;

}  // namespace trainmeter::detail
