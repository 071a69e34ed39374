#include "energy/source.hpp"

#include <dlfcn.h>

#include <cerrno>

#include <fmt/format.h>

#include "energy/dynamic_library.hpp"
#include "platform/file.hpp"

namespace trainmeter::detail {

const std::vector<EnergySourceRegistration>& energy_source_registry() {
  static const std::vector<EnergySourceRegistration> k = {
      {"rapl", "Intel/AMD RAPL counters through powercap sysfs", false, &make_rapl_source},
      {"perf", "the perf power PMU (energy-pkg, energy-ram, ...)", false, &make_perf_source},
      {"nvml", "NVIDIA GPUs through NVML", true, &make_nvml_source},
      {"estimate", "CPU TDP x process CPU time, RAM W/GiB x RSS, GPU TDP x use", false,
       &make_estimate_source},
      {"amdsmi", "AMD GPUs through AMD SMI", true, &make_amdsmi_source},
  };
  return k;
}

std::vector<std::string> energy_source_names() {
  std::vector<std::string> out;
  for (const EnergySourceRegistration& r : energy_source_registry()) out.push_back(r.name);
  return out;
}

std::string energy_sources_accepted() {
  std::string list;
  for (const EnergySourceRegistration& r : energy_source_registry())
    list += std::string(list.empty() ? "" : ",") + r.name;
  return "auto, or a comma-separated subset of " + list;
}

void* open_vendor_library(const std::string& library, const char* absent, std::string* reason) {
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = ::dlerror();
    *reason =
        "cannot load " + library + " (" + (e != nullptr ? e : "dlopen failed") + "): " + absent;
  }
  return handle;
}

void SourceEnv::note(const SourceStatus& s) {
  tried.push_back(s);
  if (s.status == diag::kPermissionDenied || s.status == diag::kIoError)
    diagnostics.add(s.source, s.status, s.reason);
}

std::optional<double> sample_cpu_counter(SourceEnv& env, Channel& c, bool ok, std::uint64_t raw,
                                         int err, const Interval& in) {
  if (!ok) {
    ++c.failed_reads;
    env.diagnostics.add(c.source, diag::kIoError,
                        "reading the counter failed: " + errno_text(err == 0 ? EINVAL : err) +
                            "; the interval's energy is lost");
    return std::nullopt;
  }
  const CounterStep step = c.counter.update(raw, in.now_ns);
  if (step == CounterStep::kFirst) return std::nullopt;
  if (step == CounterStep::kBackwards || step == CounterStep::kImplausible) {
    ++c.discarded;
    env.diagnostics.add(c.source, diag::kInvalidReading,
                        step == CounterStep::kBackwards
                            ? "counter went backwards with no known wrap range (reset?); "
                              "interval discarded"
                            : fmt::format("counter jumped by {} raw units, above {} W over the "
                                          "interval; interval discarded",
                                          raw, kMaxPlausibleWatts));
    return std::nullopt;
  }
  if (c.counter.delta() == 0 && in.busy) {
    if (c.state == ChannelState::kPending) {
      c.pending_stuck_s += in.dt_s;
      // Not yet evidence: the counter is cumulative, so a later move carries this interval's
      // joules, and 0 J for the interval keeps the total and the covered time right.
      if (c.pending_stuck_s < kStuckUnavailableS) return 0.0;
      // Virtual machines expose the PMU but the counter never moves: that is "unavailable",
      // never 0 J measured.
      c.state = ChannelState::kDisqualified;
      c.machine_j = c.attributed_j = c.covered_s = 0;
      c.samples = 0;
      std::string why =
          fmt::format("counter did not move over {:.0f} ms in which the CPUs were busy",
                      c.pending_stuck_s * 1e3);
      env.diagnostics.add(c.source, diag::kReadsZero,
                          why + "; treated as unavailable, the next source is used");
      env.tried.push_back({c.source, diag::kReadsZero, why});
      return std::nullopt;
    }
    ++c.discarded;
    env.diagnostics.add(c.source, diag::kReadsZero,
                        "counter stuck over a busy interval; interval discarded");
    return std::nullopt;
  }
  if (c.counter.delta() > 0) c.state = ChannelState::kQualified;
  return c.counter.joules();
}

}  // namespace trainmeter::detail
