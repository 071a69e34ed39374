// NVML loaded at run time with dlopen: the build never needs nvml.h or the driver. Only the few
// types and prototypes we call are declared here, with the layouts of NVML's public header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/report_keys.hpp"
#include "energy/dynamic_library.hpp"

namespace trainmeter::detail {

namespace nvml {
using Return = int;  // nvmlReturn_t
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNoPermission = 4;
inline constexpr Return kErrorInsufficientSize = 7;
using Device = struct DeviceOpaque*;  // nvmlDevice_t
struct Utilization {                  // nvmlUtilization_t
  unsigned int gpu;                   // percent of time a kernel ran, last sample period
  unsigned int memory;
};
struct Memory {  // nvmlMemory_t (v1)
  unsigned long long total, free, used;
};
struct ProcessInfo {  // nvmlProcessInfo_t as used by the _v2 and _v3 process queries
  unsigned int pid;
  unsigned long long used_gpu_memory;
  unsigned int gpu_instance_id;
  unsigned int compute_instance_id;
};
}  // namespace nvml

// X(name, return type, parameter list). Required symbols: without them NVML is unusable.
#define TM_NVML_REQUIRED(X)                               \
  X(nvmlInit_v2, nvml::Return, (void))                    \
  X(nvmlShutdown, nvml::Return, (void))                   \
  X(nvmlDeviceGetCount_v2, nvml::Return, (unsigned int*)) \
  X(nvmlDeviceGetHandleByIndex_v2, nvml::Return, (unsigned int, nvml::Device*))
// Optional symbols: a missing one disables just the feature it serves.
#define TM_NVML_OPTIONAL(X)                                                                 \
  X(nvmlErrorString, const char*, (nvml::Return))                                           \
  X(nvmlDeviceGetName, nvml::Return, (nvml::Device, char*, unsigned int))                   \
  X(nvmlDeviceGetUUID, nvml::Return, (nvml::Device, char*, unsigned int))                   \
  X(nvmlDeviceGetTotalEnergyConsumption, nvml::Return, (nvml::Device, unsigned long long*)) \
  X(nvmlDeviceGetPowerUsage, nvml::Return, (nvml::Device, unsigned int*))                   \
  X(nvmlDeviceGetEnforcedPowerLimit, nvml::Return, (nvml::Device, unsigned int*))           \
  X(nvmlDeviceGetUtilizationRates, nvml::Return, (nvml::Device, nvml::Utilization*))        \
  X(nvmlDeviceGetMemoryInfo, nvml::Return, (nvml::Device, nvml::Memory*))                   \
  X(nvmlDeviceGetComputeRunningProcesses_v3, nvml::Return,                                  \
    (nvml::Device, unsigned int*, nvml::ProcessInfo*))                                      \
  X(nvmlDeviceGetComputeRunningProcesses_v2, nvml::Return,                                  \
    (nvml::Device, unsigned int*, nvml::ProcessInfo*))

/// The loaded library. Not thread-safe: owned by the sampler thread. Closes (nvmlShutdown,
/// dlclose) on destruction.
class NvmlLibrary {
 public:
  NvmlLibrary() = default;
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  /// dlopen + dlsym + nvmlInit_v2. Returns false with `reason` (and `status`: unavailable when
  /// the library or a GPU is absent, error otherwise) filled.
  bool load(const std::string& library, std::string* status, std::string* reason) noexcept;
  void close() noexcept;
  bool loaded() const noexcept { return initialised_; }
  std::string error_text(nvml::Return r) const;

  TM_NVML_REQUIRED(TM_DL_MEMBER)
  TM_NVML_OPTIONAL(TM_DL_MEMBER)

 private:
  void* handle_ = nullptr;
  bool initialised_ = false;
};

/// Static facts about one GPU.
struct NvmlGpuInfo {
  unsigned int index = 0;
  nvml::Device device = nullptr;
  std::string name, uuid;
  double power_limit_w = -1;          ///< < 0 when unknown
  long long memory_total_bytes = -1;  ///< < 0 when unknown
  bool energy_counter = false;        ///< nvmlDeviceGetTotalEnergyConsumption works
  bool power = false;                 ///< nvmlDeviceGetPowerUsage works
  bool utilisation = false;           ///< nvmlDeviceGetUtilizationRates works
  bool memory_info = false;
  bool processes = false;
  std::uint64_t first_energy_mj = 0;
  double first_power_w = 0;
};

/// Enumerates the GPUs and probes which readings each supports.
std::vector<NvmlGpuInfo> nvml_enumerate(NvmlLibrary& lib) noexcept;

/// This process's share of a GPU from its running compute processes: 1 when it is alone, its
/// used-memory share when others run too. Returns the attribution label.
struct GpuShare {
  double share = 1.0;
  const char* attribution = rk::device;
};
GpuShare nvml_process_share(NvmlLibrary& lib, nvml::Device device, unsigned int self_pid) noexcept;

}  // namespace trainmeter::detail
