// trainmeter::torch tensor-memory tracking: the allocator reporter, its start and stop for the
// Instrumentation guard (instrument.cpp), CUDA caching-allocator statistics and the component that
// writes them into the report.
#include <ATen/Parallel.h>
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/profiler/orchestration/observer.h>

#ifdef TRAINMETER_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <algorithm>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "core/session_impl.hpp"
#include "torch/cuda_events.hpp"
#include "torch/integration.hpp"
#include "torch/registry.hpp"
#include "torch/torch_state.hpp"
#include "trainmeter/torch.hpp"

namespace trainmeter::detail {

namespace {

constexpr const char* kSource = "memory.torch";
namespace prof = ::torch::profiler::impl;

// Derives from libtorch's ProfilerStateBase, not just MemoryReportingInfoBase: the PROFILER_STATE
// slot we must occupy is read by libtorch with static_cast<ProfilerStateBase*> (profilerEnabled(),
// enableProfiler's "already enabled" check). As a real ProfilerStateBase whose config says
// Disabled, those reads are well-defined and answer "no profiler", instead of reinterpreting an
// unrelated object.
class AllocatorReporter final : public prof::ProfilerStateBase {
 public:
  explicit AllocatorReporter(std::shared_ptr<TensorMemoryState> memory)
      : prof::ProfilerStateBase(prof::ProfilerConfig(prof::ProfilerState::Disabled)),
        memory_(std::move(memory)),
        raw_(memory_.get()) {}

#if TORCH_VERSION_MAJOR >= 2
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, size_t /*total_allocated*/,
                         size_t /*total_reserved*/, c10::Device device) override {
    record(alloc_size, device);
  }
  void reportOutOfMemory(int64_t /*alloc_size*/, size_t /*total_allocated*/,
                         size_t /*total_reserved*/, c10::Device /*device*/) override {
    raw_->record_out_of_memory();
  }
#else
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, int64_t /*total_allocated*/,
                         int64_t /*total_reserved*/, c10::Device device) override {
    record(alloc_size, device);
  }
  void reportOutOfMemory(int64_t /*alloc_size*/, int64_t /*total_allocated*/,
                         int64_t /*total_reserved*/, c10::Device /*device*/) override {
    raw_->record_out_of_memory();
  }
#endif

  bool memoryProfilingEnabled() const override {
    return true;
  }
  prof::ActiveProfilerType profilerType() override {
    return prof::ActiveProfilerType::NONE;
  }

 private:
  void record(int64_t bytes, c10::Device device) noexcept {
    if (device.is_cpu())
      raw_->record_cpu(bytes);
    else if (device.is_cuda())
      raw_->record_cuda(device.index() < 0 ? 0 : static_cast<int>(device.index()), bytes);
    else
      raw_->record_other();
  }

  std::shared_ptr<TensorMemoryState> memory_;  // keeps the counters alive while installed
  TensorMemoryState* raw_;
};

// --- CUDA caching allocator -------------------------------------------------------------------

struct CudaStats {
  std::int64_t allocated = 0, allocated_peak = 0, reserved = 0, reserved_peak = 0;
};

int cuda_device_count() noexcept {
#ifdef TRAINMETER_WITH_CUDA
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

// Reads one device's aggregate statistics. Never synchronises the device: getDeviceStats only
// takes the allocator's host-side mutex. False when the allocator has not been initialised for
// the device yet (libtorch throws "Invalid device argument" then).
bool read_cuda_stats(int device, CudaStats& out) noexcept {
#ifdef TRAINMETER_WITH_CUDA
  try {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    // Index 0 is StatType::AGGREGATE (small + large pools) in every libtorch version; the enum
    // moved namespaces in 2.x, the index did not.
    out.allocated = stats.allocated_bytes[0].current;
    out.allocated_peak = stats.allocated_bytes[0].peak;
    out.reserved = stats.reserved_bytes[0].current;
    out.reserved_peak = stats.reserved_bytes[0].peak;
    return true;
  } catch (...) {
    return false;
  }
#else
  (void)device;
  (void)out;
  return false;
#endif
}

void reset_cuda_peaks(int device) noexcept {
#ifdef TRAINMETER_WITH_CUDA
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
  } catch (...) {
  }
#else
  (void)device;
#endif
}

/// Per-step CUDA peaks, written by the step hooks (training thread, lock-free: one fetch_add per
/// step claims a pre-allocated slot) and read at contribute().
struct CudaStepPeaks {
  static constexpr int kMaxDevices = 8;
  struct Slot {
    std::int64_t start_ns;
    std::uint16_t thread;
    std::int8_t devices;
    std::int64_t allocated_peak[kMaxDevices];
    std::int64_t reserved_peak[kMaxDevices];
  };
  std::vector<Slot> slots;
  std::atomic<std::uint64_t> used{0};
  std::atomic<std::uint64_t> dropped{0};
  int devices = 0;
};

}  // namespace

struct TorchState {
  std::shared_ptr<TensorMemoryState> memory = std::make_shared<TensorMemoryState>();
  std::shared_ptr<AllocatorReporter> reporter = std::make_shared<AllocatorReporter>(memory);

  std::mutex mutex;  // guards everything below
  SessionImpl* session = nullptr;
  RunContext* ctx = nullptr;  // nullptr once the session's component is gone
  HotState* hot = nullptr;
  int installs = 0;
  bool ever_installed = false;
  std::optional<nlohmann::json> model;

  // Opt-in per-step CUDA allocator peaks (config.cuda_peak_reset with a CUDA device).
  CudaStepPeaks step_peaks;
  StepHooks hooks{};
  int hook_slot = -1;
  // Default per-step CUDA tensor peaks from the reporter's own counters (no allocator reset).
  StepHooks tensor_hooks{};
  int tensor_hook_slot = -1;
  // Steps whose record carried a measured CPU tensor peak (collector thread).
  std::uint64_t steps_with_tensor_peak = 0;

  void add_diagnostic(const char* status, const std::string& message) noexcept {
    std::lock_guard<std::mutex> lock(mutex);
    if (ctx != nullptr) ctx->diagnostics.add(kSource, status, message);
  }
};

namespace {

std::uint32_t on_step_begin(void* p) noexcept {
  auto* s = static_cast<TorchState*>(p);
  for (int d = 0; d < s->step_peaks.devices; ++d) reset_cuda_peaks(d);
  return 0;
}

// Per-step CUDA tensor peak of the device the program allocated on most recently: restart the
// device's step peak from its current level at step start, read it at step end. Two relaxed
// atomics each way; the caching allocator's own counters are never touched.
constexpr std::uint32_t kNoDevice = 0xffffffffu;
std::uint32_t on_tensor_step_begin(void* p) noexcept {
  TensorMemoryState& mem = *static_cast<TorchState*>(p)->memory;
  const int d = mem.last_cuda_device();
  if (d < 0) return kNoDevice;
  TensorMemoryState::Device& dev = mem.cuda_mut(d);
  dev.step_peak.store(dev.current.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return static_cast<std::uint32_t>(d);
}

void on_tensor_step_end(void* p, std::uint32_t token, StepRecord& r) noexcept {
  if (token == kNoDevice) return;
  const int d = static_cast<int>(token);
  r.cuda_device = static_cast<std::int16_t>(d);
  r.cuda_peak_tensor_bytes =
      static_cast<TorchState*>(p)->memory->cuda(d).step_peak.load(std::memory_order_relaxed);
}

void on_step_end(void* p, std::uint32_t /*token*/, StepRecord& r) noexcept {
  auto* s = static_cast<TorchState*>(p);
  CudaStepPeaks& sp = s->step_peaks;
  const std::uint64_t i = sp.used.fetch_add(1, std::memory_order_relaxed);
  if (i >= sp.slots.size()) {
    sp.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  CudaStepPeaks::Slot& slot = sp.slots[i];
  slot.start_ns = r.start_ns;
  slot.thread = r.thread;
  slot.devices = static_cast<std::int8_t>(sp.devices);
  for (int d = 0; d < sp.devices; ++d) {
    CudaStats st;
    const bool ok = read_cuda_stats(d, st);
    slot.allocated_peak[d] = ok ? st.allocated_peak : -1;
    slot.reserved_peak[d] = ok ? st.reserved_peak : -1;
  }
}

class TorchMemoryComponent final : public Component {
 public:
  TorchMemoryComponent(std::shared_ptr<TorchState> state, RunContext* ctx, HotState* hot)
      : state_(std::move(state)), ctx_(ctx) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->ctx = ctx;
    state_->hot = hot;
  }
  ~TorchMemoryComponent() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    // The session (and its HotState) goes away with us: guards that outlive it must not touch it.
    state_->ctx = nullptr;
    state_->hot = nullptr;
    state_->session = nullptr;
  }

  const char* name() const noexcept override { return kSource; }

  void start(std::int64_t now_ns) noexcept override { sample(now_ns); }

  void steps(const StepRecord* records, std::size_t n) noexcept override {
    std::uint64_t measured = 0;
    for (std::size_t i = 0; i < n; ++i) measured += records[i].peak_tensor_bytes >= 0 ? 1 : 0;
    if (measured > 0) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->steps_with_tensor_peak += measured;
    }
  }

  void sample(std::int64_t now_ns) noexcept override {
    sample_cuda();
    publish(now_ns);
  }

  // The live figures (stream, progress line, metrics endpoint): tensor bytes while tracking,
  // CUDA allocator figures where a device answered.
  void publish(std::int64_t /*now_ns*/) noexcept {
    try {
      bool installed = false;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        installed = state_->ever_installed;
      }
      const TensorMemoryState& mem = *state_->memory;
      const bool tensors = installed && mem.cpu_events() > 0;
      ctx_->live.update([&](LiveSnapshot& s) {
        s.tensor_bytes = tensors ? mem.cpu_current() : -1;
        s.tensor_peak_bytes = tensors ? mem.cpu_peak() : -1;
        s.cuda.clear();
        for (std::size_t d = 0; d < cuda_.size(); ++d) {
          if (!cuda_[d].valid) continue;
          s.cuda.push_back({static_cast<int>(d), cuda_[d].last.allocated, cuda_[d].last.reserved});
        }
      });
    } catch (...) {
      // out of memory copying the snapshot: the live figures stay as they were
    }
  }

  void sample_cuda() noexcept {
    const int n = std::min(cuda_device_count(), TensorMemoryState::kMaxCudaDevices);
    if (n <= 0) return;
    if (cuda_.size() < static_cast<std::size_t>(n)) cuda_.resize(static_cast<std::size_t>(n));
    for (int d = 0; d < n; ++d) {
      CudaStats st;
      if (!read_cuda_stats(d, st)) continue;
      Cuda& c = cuda_[static_cast<std::size_t>(d)];
      c.valid = true;
      c.last = st;
      // With per-step resets the allocator's own peak only covers the current step; the run
      // peak is the largest we have seen.
      c.max_allocated_peak = std::max(c.max_allocated_peak, st.allocated_peak);
      c.max_reserved_peak = std::max(c.max_reserved_peak, st.reserved_peak);
    }
  }

  void stop(std::int64_t now_ns) noexcept override { sample(now_ns); }

  void contribute(nlohmann::json& report) noexcept override {
    try {
      using nlohmann::json;
      std::optional<json> model;
      bool installed = false;
      std::uint64_t measured_steps = 0;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        model = state_->model;
        installed = state_->ever_installed;
        measured_steps = state_->steps_with_tensor_peak;
      }
      if (model) report[rk::model] = std::move(*model);
      json& host = report[rk::host];
      if (host.is_object()) {
        host[rk::torch_version] = TORCH_VERSION;
        // libtorch's CPU parallelism as configured at finish (findings read it against CPU use)
        host[rk::torch_intra_op_threads] = at::get_num_threads();
        host[rk::torch_inter_op_threads] = at::get_num_interop_threads();
        const std::string cuda = cuda_runtime_version();
        if (!cuda.empty()) host[rk::cuda_version] = cuda;
      }

      json& m = report[rk::memory];
      if (!m.is_object()) m = json::object();
      json notes = json::array();
      const TensorMemoryState& mem = *state_->memory;
      if (installed && measured_steps == 0 && ctx_->steps_collected() > 0)
        ctx_->diagnostics.add(kSource, diag::kSkipped,
                              "tensor-memory tracking was not on during any step: keep the "
                              "MemoryTracking returned by track_memory() alive for the loop");
      if (installed) {
        // A device whose allocator never reported an event while tracking was on was not
        // measured: null, not 0.
        json peaks = {{"cpu", mem.cpu_events() > 0 ? json(mem.cpu_peak()) : json(nullptr)}};
        json current = {{"cpu", mem.cpu_events() > 0 ? json(mem.cpu_current()) : json(nullptr)}};
        for (int d = 0; d < TensorMemoryState::kMaxCudaDevices; ++d) {
          const auto& c = mem.cuda(d);
          if (c.events.load(std::memory_order_relaxed) == 0) continue;
          peaks[fmt::format("cuda:{}", d)] = c.peak.load(std::memory_order_relaxed);
          current[fmt::format("cuda:{}", d)] = c.current.load(std::memory_order_relaxed);
        }
        m[rk::peak_tensor_bytes] = std::move(peaks);
        m[rk::tensor_tracking] = {
            {rk::current_bytes_at_finish, std::move(current)},
            {rk::cpu_events, mem.cpu_events()},
            {rk::other_device_events, mem.other_events()},
            {rk::out_of_memory_events, mem.oom_events()},
        };
        notes.push_back(
            "peak_tensor_bytes: highest bytes of tensors allocated through libtorch's allocators "
            "while tracking was on (trainmeter::torch::track_memory) and not yet freed; exact "
            "per allocator event, excludes allocator caching, the CUDA context and OpenMP "
            "workers' private allocations");
        if (mem.oom_events() > 0)
          ctx_->diagnostics.add_count(kSource, diag::kError, mem.oom_events(),
                                      "libtorch reported out-of-memory while tracking");
      } else if (!m.contains(rk::peak_tensor_bytes)) {
        m[rk::peak_tensor_bytes] = nullptr;
      }

      json cuda = json::object();
      const bool per_step = ctx_->config.cuda_peak_reset && state_->step_peaks.devices > 0;
      for (std::size_t d = 0; d < cuda_.size(); ++d) {
        const Cuda& c = cuda_[d];
        if (!c.valid) continue;
        cuda[fmt::format("cuda:{}", d)] = {
            {rk::allocated_bytes, c.last.allocated},
            {rk::allocated_peak_bytes, c.max_allocated_peak},
            {rk::reserved_bytes, c.last.reserved},
            {rk::reserved_peak_bytes, c.max_reserved_peak},
        };
      }
      if (!cuda.empty()) {
        m[rk::cuda] = std::move(cuda);
        notes.push_back(
            per_step ? "cuda: caching-allocator statistics; peaks were reset at every step "
                       "(cuda_peak_reset), run peaks are the largest step peaks seen"
                     : "cuda: caching-allocator statistics; peaks are the allocator's own, since "
                       "the process started or the program last reset them");
      } else if (!m.contains(rk::cuda)) {
        m[rk::cuda] = nullptr;
      }

      json& existing = m[rk::notes];
      if (!existing.is_array()) existing = json::array();
      for (auto& n : notes) existing.push_back(std::move(n));
    } catch (...) {
      ctx_->diagnostics.add(kSource, diag::kError, "could not build the tensor-memory figures");
    }
  }

 private:
  struct Cuda {
    bool valid = false;
    CudaStats last;
    std::int64_t max_allocated_peak = 0, max_reserved_peak = 0;
  };

  // With per-step peak resets: each retained step's CUDA allocator peaks (from the step slots),
  // and the run peaks are the largest of them.
  void step_columns(const std::vector<StepRecord>& records, StepTable& table) noexcept override {
    try {
      if (!ctx_->config.cuda_peak_reset || state_->step_peaks.devices <= 0) return;
      CudaStepPeaks& sp = state_->step_peaks;
      const std::uint64_t n = std::min<std::uint64_t>(sp.used.load(), sp.slots.size());
      std::map<std::pair<std::int64_t, int>, const CudaStepPeaks::Slot*> by_step;
      for (std::uint64_t i = 0; i < n; ++i) {
        const auto& slot = sp.slots[i];
        by_step[{slot.start_ns, slot.thread}] = &slot;
        for (int d = 0; d < slot.devices; ++d) {
          if (d >= static_cast<int>(cuda_.size())) break;
          cuda_[static_cast<std::size_t>(d)].max_allocated_peak = std::max(
              cuda_[static_cast<std::size_t>(d)].max_allocated_peak, slot.allocated_peak[d]);
        }
      }
      auto& alloc_col = table.json("cuda_allocated_peak_bytes", StepTable::Unset::kOmit);
      auto& reserved_col = table.json("cuda_reserved_peak_bytes", StepTable::Unset::kOmit);
      for (std::size_t i = 0; i < records.size(); ++i) {
        const auto it = by_step.find({records[i].start_ns, records[i].thread});
        if (it == by_step.end()) continue;
        nlohmann::json alloc = nlohmann::json::object(), reserved = nlohmann::json::object();
        for (int d = 0; d < it->second->devices; ++d) {
          const auto name = fmt::format("cuda:{}", d);
          alloc[name] = it->second->allocated_peak[d] >= 0
                            ? nlohmann::json(it->second->allocated_peak[d])
                            : nlohmann::json(nullptr);
          reserved[name] = it->second->reserved_peak[d] >= 0
                               ? nlohmann::json(it->second->reserved_peak[d])
                               : nlohmann::json(nullptr);
        }
        alloc_col[i] = alloc.dump();
        reserved_col[i] = reserved.dump();
      }
      if (sp.dropped.load() > 0)
        ctx_->diagnostics.add_count(kSource, diag::kDropped, sp.dropped.load(),
                                    "per-step CUDA peaks beyond max_retained_steps were not kept");
    } catch (...) {
      ctx_->diagnostics.add(kSource, diag::kError, "out of memory writing per-step CUDA peaks");
    }
  }

  std::shared_ptr<TorchState> state_;
  RunContext* ctx_;
  std::vector<Cuda> cuda_;
};

}  // namespace

std::shared_ptr<TorchState> make_torch_state() {
  return std::make_shared<TorchState>();
}

TensorMemoryState& tensor_memory(TorchState& state) noexcept {
  return *state.memory;
}

std::unique_ptr<Component> make_torch_memory_component(std::shared_ptr<TorchState> state,
                                                       RunContext* ctx, HotState* hot) {
  return std::make_unique<TorchMemoryComponent>(std::move(state), ctx, hot);
}

std::shared_ptr<TorchState> torch_state_for(SessionImpl* session) noexcept {
  if (session == nullptr) return nullptr;
  try {
    bool made = false;
    return find_or_make_session_state<TorchState>(
        session,
        [session]() -> std::shared_ptr<TorchState> {
          auto state = std::make_shared<TorchState>();
          state->session = session;
          if (!session->add_component(
                  make_torch_memory_component(state, &session->context(), session->hot())))
            return nullptr;
          return state;
        },
        made);
  } catch (...) {
    return nullptr;
  }
}

bool install_reporter(TorchState& state) noexcept {
  try {
    c10::DebugInfoBase* current =
        c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE);
    if (current != nullptr) return false;
    c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE, state.reporter);
    return true;
  } catch (...) {
    return false;
  }
}

bool uninstall_reporter(TorchState& state) noexcept {
  try {
    // _pop removes the most recent entry of any kind (and throws if it is not PROFILER_STATE),
    // so check first that the most recent entry is ours: popping someone else's would corrupt
    // their scope.
    if (c10::ThreadLocalDebugInfo::_peek(c10::DebugInfoKind::PROFILER_STATE).get() !=
        state.reporter.get())
      return false;
    c10::ThreadLocalDebugInfo::_pop(c10::DebugInfoKind::PROFILER_STATE);
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace trainmeter::detail

namespace trainmeter::detail {

void stop_memory_tracking(torch::Instrumentation::Installed& inst) noexcept {
  if (!inst.memory) return;
  const std::shared_ptr<TorchState> state = std::move(inst.memory);
  TorchState& s = *state;
  if (std::this_thread::get_id() != inst.owner) {
    // Another thread's thread-local slot cannot be reached from here; the reporter stays there
    // (its counters are kept alive by it), harmless but no longer reported.
    s.add_diagnostic(
        diag::kError,
        "the trainmeter::torch guard was destroyed on another thread than the one that "
        "created it: the memory reporter stays installed on the creating thread");
  } else if (!uninstall_reporter(s)) {
    s.add_diagnostic(diag::kError,
                     "the trainmeter::torch guard could not remove the memory reporter: a later "
                     "debug-info entry "
                     "(e.g. a profiler started inside the tracked scope and not stopped) is still "
                     "installed on this thread; the reporter stays installed");
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.installs == 0 && s.hot != nullptr) {
    // No thread reports any more: step records must say "not measured" rather than repeat a
    // stale level.
    s.hot->tensor.store(nullptr, std::memory_order_relaxed);
    remove_step_hooks(*s.hot, s.hook_slot, &s.hooks);
    remove_step_hooks(*s.hot, s.tensor_hook_slot, &s.tensor_hooks);
    s.hook_slot = s.tensor_hook_slot = -1;
  }
}

bool start_memory_tracking(Session& session, torch::Instrumentation::Installed& inst) noexcept {
  if (inst.memory || !session.enabled() || session.impl() == nullptr ||
      !session.config().track_tensor_memory)
    return false;
  auto state = torch_state_for(session.impl());
  if (!state) return false;
  try {
    c10::DebugInfoBase* current =
        c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE);
    if (current == state->reporter.get()) return false;  // already tracked here
    if (current != nullptr) {
      const bool profiler = prof::profilerEnabled();
      state->add_diagnostic(
          diag::kSkipped,
          profiler ? "a libtorch profiler is active on this thread: tensor-memory tracking "
                     "stepped aside (it shares libtorch's PROFILER_STATE slot)"
                   : "another memory reporter occupies libtorch's PROFILER_STATE slot on this "
                     "thread: tensor-memory tracking stepped aside");
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      if (state->hot == nullptr) return false;  // session finished meanwhile
      if (state->installs == 0) {
        const RunContext* ctx = state->ctx;
        const int devices = std::min(cuda_device_count(), CudaStepPeaks::kMaxDevices);
        if (ctx != nullptr && ctx->config.cuda_peak_reset && devices > 0 &&
            state->step_peaks.slots.empty()) {
          state->step_peaks.slots.resize(
              static_cast<std::size_t>(std::max<std::uint64_t>(ctx->config.max_retained_steps, 1)));
          state->step_peaks.devices = devices;
          state->hooks = StepHooks{&on_step_begin, &on_step_end, state.get()};
        }
      }
    }
    if (!install_reporter(*state)) {
      state->add_diagnostic(diag::kError, "could not install the allocator reporter");
      return false;
    }
    std::lock_guard<std::mutex> lock(state->mutex);
    ++state->installs;
    state->ever_installed = true;
    if (state->hot != nullptr) {
      state->hot->tensor.store(&state->memory->cpu_step, std::memory_order_relaxed);
      if (state->step_peaks.devices > 0 && state->hook_slot < 0)
        state->hook_slot = add_step_hooks(*state->hot, &state->hooks);
      // Per-step CUDA tensor peaks, by default. Registered in CPU builds too (a step pays one
      // load and returns while no CUDA allocation was ever reported), so that the same code
      // path is tested on machines without a GPU.
      if (state->tensor_hook_slot < 0) {
        state->tensor_hooks = StepHooks{&on_tensor_step_begin, &on_tensor_step_end, state.get()};
        state->tensor_hook_slot = add_step_hooks(*state->hot, &state->tensor_hooks);
      }
    }
    inst.memory = std::move(state);
    return true;
  } catch (...) {
    state->add_diagnostic(diag::kError, "could not start tensor-memory tracking");
    return false;
  }
}

}  // namespace trainmeter::detail

namespace trainmeter::detail {
void store_model(TorchState& state, nlohmann::json model) noexcept {
  std::lock_guard<std::mutex> lock(state.mutex);
  state.model = std::move(model);
}
}  // namespace trainmeter::detail
