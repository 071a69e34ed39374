// trainmeter::torch::instrument(): the one guard of the libtorch integration. Each part's start
// and stop live with the part (memory.cpp, ops.cpp); this file composes them. It includes no
// libtorch header.
#include "torch/cuda_events.hpp"
#include "torch/integration.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"
#if TRAINMETER_TORCH_OPS
#include "trainmeter/torch_ops.hpp"
#endif

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

Instrumentation::Instrumentation() noexcept = default;
Instrumentation::Instrumentation(std::unique_ptr<Installed> installed) noexcept
    : installed_(std::move(installed)) {}
Instrumentation::Instrumentation(Instrumentation&& other) noexcept = default;
Instrumentation& Instrumentation::operator=(Instrumentation&& other) noexcept {
  if (this != &other) {
    reset();
    installed_ = std::move(other.installed_);
  }
  return *this;
}
Instrumentation::~Instrumentation() {
  reset();
}

bool Instrumentation::memory_active() const noexcept {
  return installed_ != nullptr && installed_->memory != nullptr;
}
bool Instrumentation::ops_active() const noexcept {
  return installed_ != nullptr && installed_->ops != nullptr;
}

void Instrumentation::reset_memory() noexcept {
  if (installed_) detail::stop_memory_tracking(*installed_);
}
void Instrumentation::reset_ops() noexcept {
#if TRAINMETER_TORCH_OPS
  if (installed_) detail::stop_op_accounting(*installed_);
#endif
}
void Instrumentation::reset() noexcept {
  // The reverse of instrument()'s order; either order is correct (each part has its own slots).
  reset_ops();
  reset_memory();
  installed_.reset();
}

Instrumentation instrument(Session& session, const InstrumentOptions& options) noexcept {
  if (!session.enabled() || session.impl() == nullptr) return Instrumentation();
  // GPU step time starts once the program uses a CUDA device (config.gpu_step_time).
  if (options.gpu_time) (void)detail::start_gpu_timing(session.impl());
  try {
    auto inst = std::make_unique<Instrumentation::Installed>();
    if (options.memory) (void)detail::start_memory_tracking(session, *inst);
#if TRAINMETER_TORCH_OPS
    if (options.ops) (void)detail::start_op_accounting(session, *inst);
#endif
    if (!inst->memory && !inst->ops) return Instrumentation();
    return Instrumentation(std::move(inst));
  } catch (...) {
    return Instrumentation();  // out of memory for the guard: nothing was started
  }
}

Instrumentation track_memory(Session& session) noexcept {
  InstrumentOptions options;
  options.ops = false;
  return instrument(session, options);
}

#if TRAINMETER_TORCH_OPS
Instrumentation account_ops(Session& session) noexcept {
  InstrumentOptions options;
  options.memory = false;
  options.gpu_time = false;
  return instrument(session, options);
}
#endif

}  // namespace torch
TRAINMETER_END_NAMESPACE
