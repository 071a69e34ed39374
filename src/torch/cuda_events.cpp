// CUDA events for GPU step time (see core/gpu_timing.hpp): the pool is created on the collector
// thread once the program has a CUDA context, and the training thread enqueues two events per
// step on its current stream. Nothing here synchronises a device, stream or event.
#include "torch/cuda_events.hpp"

#include <memory>
#include <string>
#include <vector>

#ifdef TRAINMETER_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <fmt/format.h>
#endif

#include "core/gpu_timing.hpp"
#include "core/session_impl.hpp"
#include "torch/torch_state.hpp"
#include "trainmeter/torch.hpp"

namespace trainmeter::detail {

#ifdef TRAINMETER_WITH_CUDA
namespace {

class CudaEventSource final : public GpuEventSource {
 public:
  ~CudaEventSource() override {
    for (cudaEvent_t e : events_)
      if (e != nullptr) (void)cudaEventDestroy(e);
    (void)cudaGetLastError();
  }

  const char* name() const noexcept override { return "cuda_event"; }

  Prepare prepare(std::uint32_t n) noexcept override {
    try {
      // cudaGetDeviceCount directly: c10's device_count() warns on machines without a driver.
      int count = 0;
      if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
        (void)cudaGetLastError();
        reason_ = "no CUDA device";
        return Prepare::kUnavailable;
      }
      // Only once the program has created a context: a CPU-only program on a GPU machine must
      // not get one (hundreds of MB of device memory) from its profiler.
      const auto device = c10::cuda::getDeviceIndexWithPrimaryContext();
      if (!device) return Prepare::kNotYet;
      c10::cuda::CUDAGuard guard(*device);
      events_.assign(n, nullptr);
      for (std::uint32_t i = 0; i < n; ++i) {
        const cudaError_t err = cudaEventCreateWithFlags(&events_[i], cudaEventDefault);
        if (err != cudaSuccess) {
          (void)cudaGetLastError();
          reason_ = fmt::format("cudaEventCreate failed: {}", cudaGetErrorString(err));
          return Prepare::kUnavailable;
        }
      }
      device_ = *device;
      return Prepare::kReady;
    } catch (const std::exception& e) {
      reason_ = e.what();
      return Prepare::kUnavailable;
    } catch (...) {
      reason_ = "unknown error while creating CUDA events";
      return Prepare::kUnavailable;
    }
  }

  std::string device() const override { return fmt::format("cuda:{}", device_); }
  std::string reason() const override {
    const int err = last_error_.load(std::memory_order_relaxed);
    if (err != 0) return cudaGetErrorString(static_cast<cudaError_t>(err));
    return reason_;
  }

  bool record(std::uint32_t e) noexcept override {
    try {
      // The current stream of the thread's current device. If that is not the events' device,
      // the record fails (and the step gets no GPU time) rather than timing an idle stream.
      const cudaError_t err =
          cudaEventRecord(events_[e], c10::cuda::getCurrentCUDAStream().stream());
      if (err == cudaSuccess) return true;
      // Clear the thread's CUDA error state: the program's next error check must not see ours.
      (void)cudaGetLastError();
      last_error_.store(static_cast<int>(err), std::memory_order_relaxed);
      return false;
    } catch (...) {
      return false;
    }
  }

  Status query(std::uint32_t e) noexcept override { return status(cudaEventQuery(events_[e])); }

  Status elapsed_ns(std::uint32_t a, std::uint32_t b, std::int64_t& ns) noexcept override {
    float ms = 0;
    const Status st = status(cudaEventElapsedTime(&ms, events_[a], events_[b]));
    if (st == Status::kReady) ns = static_cast<std::int64_t>(double(ms) * 1e6 + 0.5);
    return st;
  }

 private:
  Status status(cudaError_t err) noexcept {
    if (err == cudaSuccess) return Status::kReady;
    (void)cudaGetLastError();
    if (err == cudaErrorNotReady) return Status::kPending;
    last_error_.store(static_cast<int>(err), std::memory_order_relaxed);
    return Status::kError;
  }

  std::vector<cudaEvent_t> events_;
  c10::DeviceIndex device_ = -1;
  std::string reason_;
  std::atomic<int> last_error_{0};
};

}  // namespace
#endif

std::string cuda_runtime_version() noexcept {
#ifdef TRAINMETER_WITH_CUDA
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess || v <= 0) {
    (void)cudaGetLastError();
    return {};
  }
  try {
    return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
  } catch (...) {
    return {};
  }
#else
  return {};
#endif
}

bool start_gpu_timing(SessionImpl* session) noexcept {
#ifdef TRAINMETER_WITH_CUDA
  if (session == nullptr || !session->config().gpu_step_time) return false;
  try {
    return session->attach_gpu_timing(std::make_unique<CudaEventSource>());
  } catch (...) {
    return false;
  }
#else
  (void)session;
  return false;
#endif
}

}  // namespace trainmeter::detail

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

bool time_gpu_steps(Session& session) noexcept {
  if (!session.enabled() || session.impl() == nullptr) return false;
  (void)detail::torch_state_for(session.impl());  // host.torch_version, cuda_version
  return detail::start_gpu_timing(session.impl());
}

}  // namespace torch
TRAINMETER_END_NAMESPACE
