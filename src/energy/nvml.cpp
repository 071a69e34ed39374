#include "energy/nvml.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>

#include "base/diagnostics.hpp"
#include "base/report_keys.hpp"
#include "energy/estimator.hpp"
#include "energy/source.hpp"

namespace trainmeter::detail {

NvmlLibrary::~NvmlLibrary() {
  close();
}

void NvmlLibrary::close() noexcept {
  if (initialised_ && nvmlShutdown != nullptr) nvmlShutdown();
  initialised_ = false;
  if (handle_ != nullptr) ::dlclose(handle_);
  handle_ = nullptr;
  TM_NVML_REQUIRED(TM_DL_RESET)
  TM_NVML_OPTIONAL(TM_DL_RESET)
}

std::string NvmlLibrary::error_text(nvml::Return r) const {
  const char* s = nvmlErrorString != nullptr ? nvmlErrorString(r) : nullptr;
  return std::string(s != nullptr ? s : "NVML error") + " (nvmlReturn " + std::to_string(r) + ")";
}

bool NvmlLibrary::load(const std::string& library, std::string* status,
                       std::string* reason) noexcept {
  try {
    close();
    handle_ = open_vendor_library(library, "no NVIDIA driver on this machine", reason);
    if (handle_ == nullptr) {
      *status = diag::kUnavailable;
      return false;
    }
    std::string missing;
    TM_NVML_REQUIRED(TM_DL_REQUIRED)
    TM_NVML_OPTIONAL(TM_DL_OPTIONAL)
    if (!missing.empty()) {
      *status = diag::kUnsupported;
      *reason = library + " lacks required symbol(s) " + missing + " (driver too old?)";
      close();
      return false;
    }
    const nvml::Return r = nvmlInit_v2();
    if (r != nvml::kSuccess) {
      *status = diag::kUnavailable;
      *reason = "nvmlInit_v2 failed: " + error_text(r);
      close();
      return false;
    }
    initialised_ = true;
    return true;
  } catch (...) {
    *status = diag::kError;
    *reason = "out of memory while loading NVML";
    close();
    return false;
  }
}

std::vector<NvmlGpuInfo> nvml_enumerate(NvmlLibrary& lib) noexcept {
  std::vector<NvmlGpuInfo> gpus;
  try {
    unsigned int count = 0;
    if (!lib.loaded() || lib.nvmlDeviceGetCount_v2(&count) != nvml::kSuccess) return gpus;
    for (unsigned int i = 0; i < count && i < 64; ++i) {
      NvmlGpuInfo g;
      g.index = i;
      if (lib.nvmlDeviceGetHandleByIndex_v2(i, &g.device) != nvml::kSuccess) continue;
      char buf[128] = {0};
      if (lib.nvmlDeviceGetName != nullptr &&
          lib.nvmlDeviceGetName(g.device, buf, sizeof buf) == nvml::kSuccess)
        g.name = buf;
      buf[0] = '\0';
      if (lib.nvmlDeviceGetUUID != nullptr &&
          lib.nvmlDeviceGetUUID(g.device, buf, sizeof buf) == nvml::kSuccess)
        g.uuid = buf;
      unsigned int mw = 0;
      if (lib.nvmlDeviceGetEnforcedPowerLimit != nullptr &&
          lib.nvmlDeviceGetEnforcedPowerLimit(g.device, &mw) == nvml::kSuccess)
        g.power_limit_w = mw / 1000.0;
      nvml::Memory mem{};
      if (lib.nvmlDeviceGetMemoryInfo != nullptr &&
          lib.nvmlDeviceGetMemoryInfo(g.device, &mem) == nvml::kSuccess) {
        g.memory_info = true;
        g.memory_total_bytes = static_cast<long long>(mem.total);
      }
      unsigned long long mj = 0;
      if (lib.nvmlDeviceGetTotalEnergyConsumption != nullptr &&
          lib.nvmlDeviceGetTotalEnergyConsumption(g.device, &mj) == nvml::kSuccess) {
        g.energy_counter = true;
        g.first_energy_mj = mj;
      }
      if (lib.nvmlDeviceGetPowerUsage != nullptr &&
          lib.nvmlDeviceGetPowerUsage(g.device, &mw) == nvml::kSuccess) {
        g.power = true;
        g.first_power_w = mw / 1000.0;
      }
      nvml::Utilization u{};
      g.utilisation = lib.nvmlDeviceGetUtilizationRates != nullptr &&
                      lib.nvmlDeviceGetUtilizationRates(g.device, &u) == nvml::kSuccess;
      g.processes = lib.nvmlDeviceGetComputeRunningProcesses_v3 != nullptr ||
                    lib.nvmlDeviceGetComputeRunningProcesses_v2 != nullptr;
      gpus.push_back(std::move(g));
    }
  } catch (...) {
  }
  return gpus;
}

GpuShare nvml_process_share(NvmlLibrary& lib, nvml::Device device, unsigned int self_pid) noexcept {
  GpuShare out;
  auto fn = lib.nvmlDeviceGetComputeRunningProcesses_v3 != nullptr
                ? lib.nvmlDeviceGetComputeRunningProcesses_v3
                : lib.nvmlDeviceGetComputeRunningProcesses_v2;
  if (fn == nullptr) return out;
  nvml::ProcessInfo procs[64];
  unsigned int n = 64;
  if (fn(device, &n, procs) != nvml::kSuccess || n > 64) return out;
  // Summed as doubles: byte counts near 2^64 (and the all-ones "not available") would wrap an
  // integer sum and give shares above 1 (found by tests/fuzz).
  double total = 0, mine = 0;
  bool found = false, memory_known = true;
  for (unsigned int i = 0; i < n; ++i) {
    // NVML_VALUE_NOT_AVAILABLE (all ones) where the driver cannot tell (e.g. WDDM).
    if (procs[i].used_gpu_memory == ~0ULL) memory_known = false;
    total += static_cast<double>(procs[i].used_gpu_memory);
    if (procs[i].pid == self_pid) {
      found = true;
      mine += static_cast<double>(procs[i].used_gpu_memory);
    }
  }
  // No process holds a context: the device's (idle) energy is still spent for the machine this
  // run occupies, so it counts whole, as CodeCarbon counts GPUs, but the label says so.
  if (n == 0) {
    out.attribution = "device-no-processes";
    return out;
  }
  // Our pid is missing when NVML reports host pids to a process in a pid namespace (containers):
  // then we cannot tell processes apart and keep the whole device.
  if (!found) {
    out.attribution = "device-pid-not-listed";
    return out;
  }
  if (n == 1 || total == 0) {
    out.attribution = "process-exclusive";
    out.share = 1.0;
    return out;
  }
  if (!memory_known) {
    out.attribution = "process-count-share";
    out.share = 1.0 / n;
    return out;
  }
  out.attribution = "process-memory-share";
  out.share = std::min(1.0, mine / total);
  return out;
}

namespace {

// NVIDIA GPUs through NVML: per GPU the total energy counter, else power integrated, else (with
// the estimator on) TDP x utilisation; device memory in use; this process's share of the GPU.
class NvmlSource final : public EnergySource {
 public:
  using EnergySource::EnergySource;

  void probe(std::vector<Channel>& channels, unsigned int first_gpu) override {
    std::string status, reason;
    if (!nvml_.load(env_.config.nvml_library, &status, &reason)) {
      env_.tried.push_back({"nvml", status, reason});
      // Absent library or GPU is the normal case on CPU machines: said in sources_tried, not
      // counted as a problem.
      if (status != diag::kUnavailable) env_.diagnostics.add("nvml", status, reason);
      return;
    }
    std::vector<NvmlGpuInfo> infos = nvml_enumerate(nvml_);
    if (infos.empty()) {
      env_.tried.push_back({"nvml", diag::kUnavailable, "NVML loaded but reports no GPU"});
      return;
    }
    self_pid_ = static_cast<unsigned int>(::getpid());
    for (NvmlGpuInfo& info : infos) {
      Gpu g;
      g.info = std::move(info);
      g.number = first_gpu + g.info.index;
      const std::size_t gi = gpus_.size();
      const std::string dev = "gpu" + std::to_string(g.number);
      Channel c;
      c.name = "gpu:" + std::to_string(g.number);
      c.index = gi;
      c.attribution = rk::device;
      if (g.info.energy_counter) {
        c.source = "nvml:" + dev + ":energy-counter";
        c.provenance = "measured";
        c.preference = 0;
        g.kind = Gpu::kEnergy;
        c.counter = CounterTracker(1e-3, 0, kMaxPlausibleWatts);
        env_.tried.push_back({c.source, "ok", "total energy counter (mJ) of " + g.info.name});
      } else if (g.info.power) {
        c.source = "nvml:" + dev + ":power";
        c.provenance = "integrated";
        c.preference = 1;
        g.kind = Gpu::kPower;
        env_.tried.push_back({c.source, "ok",
                              "no energy counter (pre-Volta or unsupported); power (mW) "
                              "integrated by the sampler"});
      } else if (g.info.utilisation && env_.estimate_enabled) {
        g.tdp = choose_gpu_tdp(g.info.name, g.info.power_limit_w);
        c.source = "estimate:gpu-tdp";
        c.provenance = "estimated";
        c.has_machine = false;
        g.kind = Gpu::kEstimate;
        env_.tried.push_back({"nvml:" + dev, diag::kUnsupported,
                              "neither energy nor power readable; estimated from TDP x "
                              "utilisation"});
      } else {
        env_.tried.push_back(
            {"nvml:" + dev, diag::kUnsupported, "neither energy, power nor utilisation readable"});
        c.source.clear();
      }
      gpus_.push_back(std::move(g));
      if (!c.source.empty()) channels.push_back(std::move(c));
    }
  }

  void prime(Channel& c, const Interval& now) override {
    const Gpu& g = gpus_[c.index];
    if (g.kind == Gpu::kEnergy) c.counter.update(g.info.first_energy_mj, now.now_ns);
    if (g.kind == Gpu::kPower) {
      c.has_power = true;
      c.last_power_w = g.info.first_power_w;
    }
  }

  void begin_interval(const Interval& /*in*/) override {
    for (Gpu& g : gpus_) {
      if (!nvml_.loaded()) break;
      if (g.info.memory_info && nvml_.nvmlDeviceGetMemoryInfo != nullptr) {
        nvml::Memory m{};
        if (nvml_.nvmlDeviceGetMemoryInfo(g.info.device, &m) == nvml::kSuccess) {
          const long long used = static_cast<long long>(m.used);
          if (!g.used_peak_bytes || used > *g.used_peak_bytes) g.used_peak_bytes = used;
        }
      }
      g.has_util = false;
      if (g.info.utilisation && nvml_.nvmlDeviceGetUtilizationRates != nullptr) {
        nvml::Utilization u{};
        const nvml::Return r = nvml_.nvmlDeviceGetUtilizationRates(g.info.device, &u);
        if (r == nvml::kSuccess) {
          g.has_util = true;
          g.last_util = u.gpu;
          g.utilisation_sum += u.gpu;
          ++g.utilisation_samples;
        } else {
          env_.diagnostics.add("nvml:gpu" + std::to_string(g.number), diag::kIoError,
                               "nvmlDeviceGetUtilizationRates failed: " + nvml_.error_text(r));
        }
      }
      g.share = g.info.processes ? nvml_process_share(nvml_, g.info.device, self_pid_) : GpuShare{};
    }
  }

  Reading sample(Channel& c, const Interval& in) override {
    Reading out;
    const std::optional<double> j = read(c, in);
    if (j) {
      // Qualified by a successful reading: a GPU whose every call fails reports nothing, not 0 J.
      const Gpu& g = gpus_[c.index];
      c.state = ChannelState::kQualified;
      out.machine_j = j;
      out.attributed_j = *j * g.share.share;
      ++c.attribution_counts[g.share.attribution];
    }
    return out;
  }

  void describe(const Channel& c, nlohmann::json& component, nlohmann::json& notes) const override {
    const Gpu& g = gpus_[c.index];
    if (g.kind == Gpu::kEnergy)
      notes.push_back("NVML total energy counter (mJ since driver load), differenced per sample");
    if (g.kind == Gpu::kPower)
      notes.push_back(
          "NVML power (mW) sampled every interval and integrated "
          "with the trapezoid rule");
    if (g.kind == Gpu::kEstimate) {
      using nlohmann::json;
      component[rk::inputs] = {
          {"gpu_name", g.info.name},
          {"tdp_w", g.tdp.tdp_w},
          {"tdp_basis", g.tdp.basis},
          {"tdp_source", g.tdp.source},
          {"mean_utilisation_percent", g.utilisation_samples > 0
                                           ? json(g.utilisation_sum / g.utilisation_samples)
                                           : json(nullptr)}};
      component[rk::constants] = {
          {"default_gpu_w", kDefaultGpuWatts},
          {"default_gpu_w_source", "Green Algorithms TDP_gpu.csv v3.0, \"Any\""}};
      notes.push_back("P = TDP x NVML utilisation.gpu / 100, trapezoid between samples");
    }
  }

  void gpus(std::vector<GpuFacts>& out) const override {
    for (const Gpu& g : gpus_)
      out.push_back({g.number, g.info.name, g.info.uuid, g.info.power_limit_w,
                     g.info.memory_total_bytes, g.used_peak_bytes});
  }

  void close() noexcept override { nvml_.close(); }

 private:
  struct Gpu {
    enum Kind { kNone, kEnergy, kPower, kEstimate } kind = kNone;
    NvmlGpuInfo info;
    unsigned int number = 0;  // the report's GPU index
    GpuTdpChoice tdp;
    std::optional<long long> used_peak_bytes;
    double utilisation_sum = 0;
    std::uint64_t utilisation_samples = 0;
    unsigned int last_util = 0;
    bool has_util = false;
    GpuShare share;
  };

  std::optional<double> read(Channel& c, const Interval& in) {
    Gpu& g = gpus_[c.index];
    if (!nvml_.loaded()) return std::nullopt;
    if (g.kind == Gpu::kEnergy) {
      unsigned long long mj = 0;
      const nvml::Return r = nvml_.nvmlDeviceGetTotalEnergyConsumption(g.info.device, &mj);
      if (r != nvml::kSuccess) {
        ++c.failed_reads;
        env_.diagnostics.add(c.source, diag::kIoError,
                             "nvmlDeviceGetTotalEnergyConsumption failed: " + nvml_.error_text(r) +
                                 "; energy measured so far is kept");
        return std::nullopt;
      }
      const CounterStep step = c.counter.update(mj, in.now_ns);
      if (step == CounterStep::kBackwards || step == CounterStep::kImplausible) {
        ++c.discarded;
        env_.diagnostics.add(c.source, diag::kInvalidReading,
                             "energy counter went backwards or jumped implausibly (driver "
                             "reload?); interval discarded");
        return std::nullopt;
      }
      if (step == CounterStep::kFirst) return std::nullopt;
      // NVML refreshes the counter about every 100 ms: an interval may see 0 and the next twice
      // as much. Per-step figures are apportioned over time, so that evens out.
      return c.counter.joules();
    }
    double p = 0;
    if (g.kind == Gpu::kPower) {
      unsigned int mw = 0;
      const nvml::Return r = nvml_.nvmlDeviceGetPowerUsage(g.info.device, &mw);
      if (r != nvml::kSuccess) {
        ++c.failed_reads;
        c.has_power = false;  // never integrate across a gap
        env_.diagnostics.add(c.source, diag::kIoError,
                             "nvmlDeviceGetPowerUsage failed: " + nvml_.error_text(r) +
                                 "; energy measured so far is kept");
        return std::nullopt;
      }
      p = mw / 1000.0;
    } else {  // estimate
      if (!g.has_util) {
        c.has_power = false;
        return std::nullopt;
      }
      p = g.tdp.tdp_w * g.last_util / 100.0;
    }
    std::optional<double> j;
    if (c.has_power) j = 0.5 * (c.last_power_w + p) * in.dt_s;  // trapezoid
    c.has_power = true;
    c.last_power_w = p;
    return j;
  }

  NvmlLibrary nvml_;
  std::vector<Gpu> gpus_;
  unsigned int self_pid_ = 0;
};

}  // namespace

std::unique_ptr<EnergySource> make_nvml_source(SourceEnv& env) {
  return std::make_unique<NvmlSource>(env);
}

}  // namespace trainmeter::detail
