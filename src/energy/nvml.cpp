#include "energy/nvml.hpp"

#include <dlfcn.h>

#include <algorithm>

#include "core/diagnostics.hpp"

namespace trainmeter::detail {

NvmlLibrary::~NvmlLibrary() {
  close();
}

void NvmlLibrary::close() noexcept {
  if (initialised_ && nvmlShutdown != nullptr) nvmlShutdown();
  initialised_ = false;
  if (handle_ != nullptr) ::dlclose(handle_);
  handle_ = nullptr;
#define TM_NVML_RESET(name, ret, params) name = nullptr;
  TM_NVML_REQUIRED(TM_NVML_RESET)
  TM_NVML_OPTIONAL(TM_NVML_RESET)
#undef TM_NVML_RESET
}

std::string NvmlLibrary::error_text(nvml::Return r) const {
  const char* s = nvmlErrorString != nullptr ? nvmlErrorString(r) : nullptr;
  return std::string(s != nullptr ? s : "NVML error") + " (nvmlReturn " + std::to_string(r) + ")";
}

bool NvmlLibrary::load(const std::string& library, std::string* status,
                       std::string* reason) noexcept {
  try {
    close();
    handle_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      const char* e = ::dlerror();
      *status = diag::kUnavailable;
      *reason = "cannot load " + library + " (" + (e != nullptr ? e : "dlopen failed") +
                "): no NVIDIA driver on this machine";
      return false;
    }
    std::string missing;
#define TM_NVML_REQ(name, ret, params)                             \
  name = reinterpret_cast<ret(*) params>(::dlsym(handle_, #name)); \
  if (name == nullptr) missing += std::string(missing.empty() ? "" : ", ") + #name;
#define TM_NVML_OPT(name, ret, params) \
  name = reinterpret_cast<ret(*) params>(::dlsym(handle_, #name));
    TM_NVML_REQUIRED(TM_NVML_REQ)
    TM_NVML_OPTIONAL(TM_NVML_OPT)
#undef TM_NVML_REQ
#undef TM_NVML_OPT
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

}  // namespace trainmeter::detail
