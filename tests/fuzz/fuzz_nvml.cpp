// NVML return codes and values through the real loader: this executable exports the NVML
// functions itself (linked with -rdynamic) and NvmlLibrary::load("") dlopens the main program,
// so dlsym, nvmlInit_v2, enumeration, process shares and the energy component's sampling all run
// as with a driver, while every call returns what the input scripts: any return code, huge or
// zero readings, counters that go backwards, GPUs that disappear mid-run.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "base/component.hpp"
#include "energy/energy.hpp"
#include "energy/nvml.hpp"
#include "fuzz_support.hpp"
#include "fuzz_support_schema.hpp"
#include "report/json_io.hpp"

using namespace trainmeter;

namespace {

// The script: the fuzz input, consumed byte by byte; when it runs out every call succeeds with
// zeros, so each input is finite.
struct Script {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    const int width = byte() % 9;  // 0..8 bytes: small and huge values alike
    for (int i = 0; i < width; ++i) v = (v << 8) | byte();
    return v;
  }
  // Mostly success; otherwise any NVML code, or garbage.
  int code() {
    const std::uint8_t b = byte();
    if (b < 160) return 0;
    if (b < 250) return b % 28;
    return static_cast<int>(static_cast<std::uint32_t>(u64()));
  }
};
Script g_script;
// Opaque handles: distinct non-null values the library only passes back to us.
detail::nvml::Device device_handle(unsigned int i) {
  return reinterpret_cast<detail::nvml::Device>(static_cast<std::uintptr_t>(0x1000 + 16 * i));
}

}  // namespace

#define TM_EXPORT extern "C" __attribute__((visibility("default"), used))
TM_EXPORT int nvmlInit_v2() {
  return g_script.byte() < 240 ? 0 : g_script.code();
}
TM_EXPORT int nvmlShutdown() {
  return 0;
}
TM_EXPORT const char* nvmlErrorString(int r) {
  return r == 1 ? nullptr : "scripted failure";
}
TM_EXPORT int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = g_script.byte() % 5;
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int i, detail::nvml::Device* d) {
  *d = device_handle(i);
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetName(detail::nvml::Device, char* buf, unsigned int len) {
  // A name that may fill the buffer exactly (no NUL from the driver is a real-world quirk).
  const unsigned int k = g_script.byte() % (len + 1);
  std::memset(buf, 'G', k);
  if (k < len)
    buf[k] = '\0';
  else
    buf[len - 1] = '\0';
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetUUID(detail::nvml::Device, char* buf, unsigned int len) {
  std::strncpy(buf, "GPU-fuzz", len);
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetTotalEnergyConsumption(detail::nvml::Device, unsigned long long* mj) {
  *mj = g_script.u64();
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetPowerUsage(detail::nvml::Device, unsigned int* mw) {
  *mw = static_cast<unsigned int>(g_script.u64());
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetEnforcedPowerLimit(detail::nvml::Device, unsigned int* mw) {
  *mw = static_cast<unsigned int>(g_script.u64());
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetUtilizationRates(detail::nvml::Device, detail::nvml::Utilization* u) {
  u->gpu = g_script.byte();  // may exceed 100
  u->memory = g_script.byte();
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetMemoryInfo(detail::nvml::Device, detail::nvml::Memory* m) {
  m->total = g_script.u64();
  m->used = g_script.u64();
  m->free = 0;
  return g_script.code();
}
TM_EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(detail::nvml::Device, unsigned int* n,
                                                      detail::nvml::ProcessInfo* procs) {
  const unsigned int want = g_script.byte() % 70;  // sometimes more than the caller's room
  const int r = g_script.code();
  if (want > *n) {
    *n = want;
    return r == 0 ? detail::nvml::kErrorInsufficientSize : r;
  }
  for (unsigned int i = 0; i < want; ++i) {
    procs[i].pid = g_script.byte() < 128 ? static_cast<unsigned int>(::getpid()) : 1000u + i;
    procs[i].used_gpu_memory = g_script.byte() < 20 ? ~0ULL : g_script.u64();
    procs[i].gpu_instance_id = procs[i].compute_instance_id = 0;
  }
  *n = want;
  return r;
}

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  g_script = Script{data, size};
  {
    detail::NvmlLibrary lib;
    std::string status, reason;
    if (lib.load("", &status, &reason)) {
      for (const detail::NvmlGpuInfo& g : detail::nvml_enumerate(lib)) {
        const detail::GpuShare s =
            detail::nvml_process_share(lib, g.device, static_cast<unsigned int>(::getpid()));
        fuzz::check(std::isfinite(s.share) && s.share >= 0 && s.share <= 1,
                    "GPU share outside [0, 1]", std::to_string(s.share) + " " + s.attribution);
      }
      const std::string text = lib.error_text(static_cast<int>(g_script.u64()));
      fuzz::check(!text.empty(), "empty NVML error text");
    } else {
      fuzz::check(!status.empty() && !reason.empty(), "load failed without a status and reason");
    }
  }
  // The energy component sampling the scripted GPUs for up to 16 intervals.
  detail::RunContext ctx;
  ctx.config.nvml_library = "";
  ctx.config.energy_sources = {"nvml"};
  ctx.config.sample_interval_ms = 100;
  ctx.start_ns = 1'000'000'000;
  ctx.phase_name = [](std::uint16_t) { return std::string("train"); };
  ctx.steps_collected = [] { return std::uint64_t(0); };
  std::unique_ptr<detail::Component> energy = detail::make_energy_component(ctx);
  std::int64_t now = ctx.start_ns;
  energy->start(now);
  for (int i = 0; i < 16 && g_script.n > 0; ++i) {
    now += 100'000'000;
    energy->sample(now);
  }
  now += 100'000'000;
  energy->sample(now);
  energy->stop(now);
  nlohmann::json report = {{"steps", nlohmann::json::array()},
                           {"phases", nlohmann::json::object()},
                           {"host", {{"gpus", nlohmann::json::array()}}},
                           {"memory", nullptr},
                           {"energy", nullptr}};
  energy->contribute(report);
  // As written to the file: dump_report turns non-finite numbers into null.
  report = nlohmann::json::parse(detail::dump_report(report));
  const auto errors = fuzz::section_errors(report["energy"], "energy");
  fuzz::check(errors.empty(), "energy section violates the schema",
              errors.empty() ? "" : errors[0] + "\n" + report["energy"]["components"].dump());
  for (const auto& c : report["energy"]["components"]) {
    if (!c.contains("energy_j") || !c["energy_j"].is_number()) continue;
    const double j = c["energy_j"].get<double>();
    fuzz::check(std::isfinite(j) && j >= 0, "GPU energy negative or non-finite", std::to_string(j));
  }
  return 0;
}
