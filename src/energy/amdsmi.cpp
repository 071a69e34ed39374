// AMD GPUs through AMD SMI (libamd_smi.so, ROCm), loaded at run time with dlopen as NVML is: the
// build never needs amdsmi.h or ROCm. Only the types and prototypes we call are declared here,
// with the layouts of ROCm's amd_smi/amdsmi.h. Per GPU: the energy accumulator
// (amdsmi_get_energy_count: a tick count and the counter's resolution in microjoules per tick),
// differenced per sample; VRAM in use (bytes) for the device-memory peak. Method and units:
// docs/methodology.md (AMD SMI).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "base/report_keys.hpp"
#include "energy/dynamic_library.hpp"
#include "energy/source.hpp"

namespace trainmeter::detail {
namespace {

namespace amdsmi {
using Status = int;  // amdsmi_status_t
inline constexpr Status kSuccess = 0;
inline constexpr Status kNotSupported = 2;
inline constexpr Status kNoPerm = 10;
using SocketHandle = void*;                             // amdsmi_socket_handle
using ProcessorHandle = void*;                          // amdsmi_processor_handle
inline constexpr std::uint64_t kInitAmdGpus = 1u << 1;  // AMDSMI_INIT_AMD_GPUS
inline constexpr int kProcessorTypeAmdGpu = 1;          // AMDSMI_PROCESSOR_TYPE_AMD_GPU
inline constexpr int kMemTypeVram = 0;                  // AMDSMI_MEM_TYPE_VRAM
// amdsmi_asic_info_t starts with char market_name[256]; the struct is larger (896 bytes in ROCm
// 6.x) and has grown between releases, so it is read into a generous zeroed buffer.
inline constexpr std::size_t kAsicInfoBuffer = 4096;
inline constexpr std::size_t kMarketNameLength = 256;
}  // namespace amdsmi

// X(name, return type, parameter list). Required symbols: without them AMD SMI is unusable.
#define TM_AMDSMI_REQUIRED(X)                                                           \
  X(amdsmi_init, amdsmi::Status, (std::uint64_t))                                       \
  X(amdsmi_shut_down, amdsmi::Status, (void))                                           \
  X(amdsmi_get_socket_handles, amdsmi::Status, (std::uint32_t*, amdsmi::SocketHandle*)) \
  X(amdsmi_get_processor_handles, amdsmi::Status,                                       \
    (amdsmi::SocketHandle, std::uint32_t*, amdsmi::ProcessorHandle*))
// Optional symbols: a missing one disables just the feature it serves.
#define TM_AMDSMI_OPTIONAL(X)                                                                    \
  X(amdsmi_status_code_to_string, amdsmi::Status, (amdsmi::Status, const char**))                \
  X(amdsmi_get_processor_type, amdsmi::Status, (amdsmi::ProcessorHandle, int*))                  \
  X(amdsmi_get_gpu_asic_info, amdsmi::Status, (amdsmi::ProcessorHandle, void*))                  \
  X(amdsmi_get_gpu_device_uuid, amdsmi::Status, (amdsmi::ProcessorHandle, unsigned int*, char*)) \
  X(amdsmi_get_energy_count, amdsmi::Status,                                                     \
    (amdsmi::ProcessorHandle, std::uint64_t*, float*, std::uint64_t*))                           \
  X(amdsmi_get_gpu_memory_total, amdsmi::Status, (amdsmi::ProcessorHandle, int, std::uint64_t*)) \
  X(amdsmi_get_gpu_memory_usage, amdsmi::Status, (amdsmi::ProcessorHandle, int, std::uint64_t*))

class AmdSmiSource final : public EnergySource {
 public:
  using EnergySource::EnergySource;
  ~AmdSmiSource() override { close(); }

  void probe(std::vector<Channel>& channels, unsigned int first_gpu) override {
    std::string status, reason;
    if (!load(env_.config.amdsmi_library, &status, &reason)) {
      env_.tried.push_back({"amdsmi", status, reason});
      // An absent library or GPU is the normal case: said in sources_tried, not counted as a
      // problem.
      if (status != diag::kUnavailable) env_.diagnostics.add("amdsmi", status, reason);
      return;
    }
    enumerate();
    if (gpus_.empty()) {
      env_.tried.push_back({"amdsmi", diag::kUnavailable, "AMD SMI loaded but reports no GPU"});
      return;
    }
    for (std::size_t i = 0; i < gpus_.size(); ++i) {
      Gpu& g = gpus_[i];
      g.number = first_gpu + static_cast<unsigned int>(i);
      const std::string dev = "amdsmi:gpu" + std::to_string(g.number);
      if (!g.energy_counter) {
        env_.tried.push_back({dev, diag::kUnsupported, g.energy_reason});
        continue;
      }
      Channel c;
      c.name = "gpu:" + std::to_string(g.number);
      c.source = dev + ":energy-counter";
      c.provenance = "measured";
      c.preference = 0;
      c.index = i;
      c.attribution = rk::device;
      c.counter = CounterTracker(g.resolution_uj * 1e-6, 0, kMaxPlausibleWatts);
      env_.tried.push_back(
          {c.source, "ok",
           fmt::format("energy accumulator ({:g} uJ per tick) of {}", g.resolution_uj,
                       g.name.empty() ? std::string("an AMD GPU") : g.name)});
      channels.push_back(std::move(c));
    }
  }

  void prime(Channel& c, const Interval& now) override {
    c.counter.update(gpus_[c.index].first_ticks, now.now_ns);
  }

  void begin_interval(const Interval& /*in*/) override {
    if (!initialised_ || amdsmi_get_gpu_memory_usage == nullptr) return;
    for (Gpu& g : gpus_) {
      std::uint64_t used = 0;
      if (amdsmi_get_gpu_memory_usage(g.handle, amdsmi::kMemTypeVram, &used) == amdsmi::kSuccess) {
        const long long u = static_cast<long long>(used);
        if (!g.used_peak_bytes || u > *g.used_peak_bytes) g.used_peak_bytes = u;
      }
    }
  }

  Reading sample(Channel& c, const Interval& in) override {
    Reading out;
    if (!initialised_) return out;
    const Gpu& g = gpus_[c.index];
    std::uint64_t ticks = 0, timestamp_ns = 0;
    float resolution = 0;
    const amdsmi::Status r = amdsmi_get_energy_count(g.handle, &ticks, &resolution, &timestamp_ns);
    if (r != amdsmi::kSuccess) {
      ++c.failed_reads;
      env_.diagnostics.add(
          c.source, diag::kIoError,
          "amdsmi_get_energy_count failed: " + error_text(r) + "; energy measured so far is kept");
      return out;
    }
    const CounterStep step = c.counter.update(ticks, in.now_ns);
    if (step == CounterStep::kBackwards || step == CounterStep::kImplausible) {
      ++c.discarded;
      env_.diagnostics.add(c.source, diag::kInvalidReading,
                           "energy accumulator went backwards or jumped implausibly (driver "
                           "reload?); interval discarded");
      return out;
    }
    if (step == CounterStep::kFirst) return out;
    // Qualified by a successful reading: a GPU whose every call fails reports nothing, not 0 J.
    // The whole device's energy counts for this run (no per-process split).
    c.state = ChannelState::kQualified;
    out.machine_j = c.counter.joules();
    out.attributed_j = out.machine_j;
    return out;
  }

  void describe(const Channel& c, nlohmann::json& component, nlohmann::json& notes) const override {
    component[rk::inputs] = {{"counter_resolution_uj", gpus_[c.index].resolution_uj}};
    notes.push_back(
        "AMD SMI energy accumulator (amdsmi_get_energy_count: ticks x counter_resolution uJ), "
        "differenced per sample; the whole device counts for this run");
  }

  void gpus(std::vector<GpuFacts>& out) const override {
    for (const Gpu& g : gpus_)
      out.push_back({g.number, g.name, g.uuid, -1, g.memory_total_bytes, g.used_peak_bytes});
  }

  void close() noexcept override {
    if (initialised_ && amdsmi_shut_down != nullptr) amdsmi_shut_down();
    initialised_ = false;
    if (handle_ != nullptr) ::dlclose(handle_);
    handle_ = nullptr;
    TM_AMDSMI_REQUIRED(TM_DL_RESET)
    TM_AMDSMI_OPTIONAL(TM_DL_RESET)
  }

 private:
  struct Gpu {
    amdsmi::ProcessorHandle handle = nullptr;
    unsigned int number = 0;  // the report's GPU index
    std::string name, uuid;
    long long memory_total_bytes = -1;
    bool energy_counter = false;
    std::string energy_reason;  // why not, when !energy_counter
    double resolution_uj = 0;
    std::uint64_t first_ticks = 0;
    std::optional<long long> used_peak_bytes;
  };

  std::string error_text(amdsmi::Status r) const {
    const char* s = nullptr;
    if (amdsmi_status_code_to_string == nullptr ||
        amdsmi_status_code_to_string(r, &s) != amdsmi::kSuccess || s == nullptr)
      s = "AMD SMI error";
    return std::string(s) + " (amdsmi_status_t " + std::to_string(r) + ")";
  }

  // dlopen + dlsym + amdsmi_init(AMDSMI_INIT_AMD_GPUS). False with `status` (unavailable when the
  // library or a GPU is absent, unsupported when a required symbol is missing) and `reason`.
  bool load(const std::string& library, std::string* status, std::string* reason) {
    close();
    handle_ = open_vendor_library(library, "no ROCm AMD SMI on this machine", reason);
    if (handle_ == nullptr) {
      *status = diag::kUnavailable;
      return false;
    }
    std::string missing;
    TM_AMDSMI_REQUIRED(TM_DL_REQUIRED)
    TM_AMDSMI_OPTIONAL(TM_DL_OPTIONAL)
    if (!missing.empty()) {
      *status = diag::kUnsupported;
      *reason = library + " lacks required symbol(s) " + missing + " (ROCm too old?)";
      close();
      return false;
    }
    const amdsmi::Status r = amdsmi_init(amdsmi::kInitAmdGpus);
    if (r != amdsmi::kSuccess) {
      *status = r == amdsmi::kNoPerm ? diag::kPermissionDenied : diag::kUnavailable;
      *reason = "amdsmi_init failed: " + error_text(r);
      close();
      return false;
    }
    initialised_ = true;
    return true;
  }

  // Every AMD GPU of every socket, with its static facts and first energy reading.
  void enumerate() {
    std::uint32_t sockets = 0;
    if (amdsmi_get_socket_handles(&sockets, nullptr) != amdsmi::kSuccess || sockets == 0) return;
    std::vector<amdsmi::SocketHandle> socket_handles(std::min<std::uint32_t>(sockets, 64));
    sockets = static_cast<std::uint32_t>(socket_handles.size());
    if (amdsmi_get_socket_handles(&sockets, socket_handles.data()) != amdsmi::kSuccess) return;
    socket_handles.resize(std::min<std::size_t>(sockets, socket_handles.size()));
    for (amdsmi::SocketHandle socket : socket_handles) {
      std::uint32_t n = 0;
      if (amdsmi_get_processor_handles(socket, &n, nullptr) != amdsmi::kSuccess || n == 0) continue;
      std::vector<amdsmi::ProcessorHandle> procs(std::min<std::uint32_t>(n, 64));
      n = static_cast<std::uint32_t>(procs.size());
      if (amdsmi_get_processor_handles(socket, &n, procs.data()) != amdsmi::kSuccess) continue;
      procs.resize(std::min<std::size_t>(n, procs.size()));
      for (amdsmi::ProcessorHandle p : procs) {
        int type = amdsmi::kProcessorTypeAmdGpu;
        if (amdsmi_get_processor_type != nullptr &&
            amdsmi_get_processor_type(p, &type) == amdsmi::kSuccess &&
            type != amdsmi::kProcessorTypeAmdGpu)
          continue;
        if (gpus_.size() >= 64) return;
        gpus_.push_back(describe_gpu(p));
      }
    }
  }

  Gpu describe_gpu(amdsmi::ProcessorHandle p) {
    Gpu g;
    g.handle = p;
    if (amdsmi_get_gpu_asic_info != nullptr) {
      std::vector<char> asic(amdsmi::kAsicInfoBuffer, '\0');
      if (amdsmi_get_gpu_asic_info(p, asic.data()) == amdsmi::kSuccess) {
        std::size_t len = 0;
        while (len < amdsmi::kMarketNameLength && asic[len] != '\0') ++len;
        g.name.assign(asic.data(), len);
      }
    }
    if (amdsmi_get_gpu_device_uuid != nullptr) {
      char buf[128] = {0};
      unsigned int len = sizeof buf - 1;
      if (amdsmi_get_gpu_device_uuid(p, &len, buf) == amdsmi::kSuccess) g.uuid = buf;
    }
    std::uint64_t bytes = 0;
    if (amdsmi_get_gpu_memory_total != nullptr &&
        amdsmi_get_gpu_memory_total(p, amdsmi::kMemTypeVram, &bytes) == amdsmi::kSuccess)
      g.memory_total_bytes = static_cast<long long>(bytes);
    if (amdsmi_get_energy_count == nullptr) {
      g.energy_reason = "the library lacks amdsmi_get_energy_count";
      return g;
    }
    std::uint64_t ticks = 0, timestamp_ns = 0;
    float resolution = 0;
    const amdsmi::Status r = amdsmi_get_energy_count(p, &ticks, &resolution, &timestamp_ns);
    if (r != amdsmi::kSuccess) {
      g.energy_reason = "amdsmi_get_energy_count: " + error_text(r);
    } else if (!(resolution > 0)) {
      g.energy_reason = "amdsmi_get_energy_count gives no counter resolution";
    } else {
      g.energy_counter = true;
      g.resolution_uj = static_cast<double>(resolution);
      g.first_ticks = ticks;
    }
    return g;
  }

  TM_AMDSMI_REQUIRED(TM_DL_MEMBER)
  TM_AMDSMI_OPTIONAL(TM_DL_MEMBER)
  void* handle_ = nullptr;
  bool initialised_ = false;
  std::vector<Gpu> gpus_;
};

}  // namespace

std::unique_ptr<EnergySource> make_amdsmi_source(SourceEnv& env) {
  return std::make_unique<AmdSmiSource>(env);
}

}  // namespace trainmeter::detail
