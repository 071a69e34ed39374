// `trainmeter probe`: every energy source on this machine, and exactly why one is not usable.
#include <cerrno>
#include <chrono>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "base/report_keys.hpp"
#include "energy/energy.hpp"
#include "energy/estimator.hpp"
#include "energy/perf_power.hpp"
#include "energy/rapl.hpp"
#include "energy/source.hpp"

namespace trainmeter::detail {
namespace {

using nlohmann::json;

// Keeps one CPU busy so a working counter must move; a counter that stays put reads zero.
void spin(int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  volatile std::uint64_t x = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 10000; ++i) x = x + static_cast<std::uint64_t>(i);
  }
}

json entry(const SourceStatus& s) {
  return {{rk::source, s.source}, {rk::status, s.status}, {rk::reason, s.reason}};
}

}  // namespace

json probe_energy_sources(const Config& config, int busy_ms) noexcept {
  json out;
  try {
    json sources = json::array();
    auto enabled = [&](const char* s) {
      for (const std::string& e : config.energy_sources)
        if (e == "auto" || e == s) return true;
      return false;
    };

    // RAPL: every zone, then a busy interval to find counters that never move.
    RaplDiscovery rapl = discover_rapl(config.powercap_root, config.rapl_psys);
    for (const SourceStatus& s : rapl.tried)
      if (s.status != "ok") sources.push_back(entry(s));
    // Perf counters, opened before the busy interval so both are checked by the same spin.
    PerfPowerPmu pmu = read_perf_power_pmu(config.perf_event_root);
    struct Opened {
      std::string label;
      PerfCounter counter;
      std::uint64_t first = 0;
      double scale = 0;
    };
    std::vector<Opened> perf;
    for (const SourceStatus& s : pmu.tried) sources.push_back(entry(s));
    for (const PerfEventSpec& e : pmu.events) {
      const std::string kind = perf_event_kind(e.name);
      if (kind.empty()) {
        sources.push_back(entry({"perf:" + e.name, diag::kSkipped, "part of energy-pkg"}));
        continue;
      }
      for (int cpu : pmu.cpus) {
        Opened o;
        o.label = "perf:" + e.name + (pmu.cpus.size() > 1 ? ":cpu" + std::to_string(cpu) : "");
        o.scale = e.scale;
        const int err = o.counter.open(pmu.type, e.config, cpu);
        int rerr = 0;
        if (err != 0) {
          sources.push_back(
              entry({o.label,
                     (err == EACCES || err == EPERM) ? diag::kPermissionDenied : diag::kUnsupported,
                     perf_open_error_text(e.name, cpu, err)}));
        } else if (!o.counter.read(&o.first, &rerr)) {
          sources.push_back(entry({o.label, diag::kIoError, "read failed: " + errno_text(rerr)}));
        } else {
          perf.push_back(std::move(o));
        }
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (!rapl.domains.empty() || !perf.empty()) spin(busy_ms);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (RaplDomain& d : rapl.domains) {
      int err = 0;
      auto v = d.energy_uj.read_int64(&err);
      if (!v) {
        sources.push_back(entry({d.source, diag::kIoError, rapl_open_error_text(d.zone, err)}));
      } else if (static_cast<std::uint64_t>(*v) == d.first_uj) {
        sources.push_back(
            entry({d.source, diag::kReadsZero,
                   fmt::format("energy_uj did not move over {:.0f} ms of busy CPU", secs * 1e3)}));
      } else {
        const double j = (static_cast<std::uint64_t>(*v) >= d.first_uj
                              ? static_cast<double>(static_cast<std::uint64_t>(*v) - d.first_uj)
                              : static_cast<double>(d.max_energy_range_uj - d.first_uj +
                                                    static_cast<std::uint64_t>(*v))) *
                         1e-6;
        sources.push_back(
            entry({d.source, "ok", fmt::format("{} kind, {:.2f} W while busy", d.kind, j / secs)}));
      }
    }
    for (Opened& o : perf) {
      std::uint64_t v = 0;
      int err = 0;
      if (!o.counter.read(&v, &err)) {
        sources.push_back(entry({o.label, diag::kIoError, "read failed: " + errno_text(err)}));
      } else if (v == o.first) {
        sources.push_back(entry({o.label, diag::kReadsZero,
                                 fmt::format("reads 0 J over {:.0f} ms of busy CPU: treated as "
                                             "unavailable (typical of virtual machines)",
                                             secs * 1e3)}));
      } else {
        sources.push_back(entry({o.label, "ok",
                                 fmt::format("{:.2f} W while busy",
                                             static_cast<double>(v - o.first) * o.scale / secs)}));
      }
    }

    // GPU sources (NVML, AMD SMI, ...), listed through their own probe(): the same outcomes as
    // energy.sources_tried.
    json gpus = json::array();
    Diagnostics diagnostics;
    std::vector<SourceStatus> tried;
    SourceEnv env{config, diagnostics, tried};
    env.estimate_enabled = true;
    std::vector<std::unique_ptr<EnergySource>> listed;
    std::vector<Channel> channels;
    for (const EnergySourceRegistration& reg : energy_source_registry()) {
      if (!reg.probe_lists) continue;
      std::vector<GpuFacts> before;
      for (const auto& src : listed) src->gpus(before);
      listed.push_back(reg.make(env));
      listed.back()->probe(channels, static_cast<unsigned int>(before.size()));
    }
    for (const SourceStatus& s : tried) sources.push_back(entry(s));
    std::vector<GpuFacts> facts;
    for (const auto& src : listed) src->gpus(facts);
    for (const GpuFacts& g : facts) {
      const GpuTdpChoice t = choose_gpu_tdp(g.name, g.power_limit_w);
      gpus.push_back(
          {{rk::index, g.index},
           {rk::name, g.name},
           {"uuid", g.uuid},
           {"power_limit_w", g.power_limit_w >= 0 ? json(g.power_limit_w) : json()},
           {"memory_total_bytes", g.memory_total_bytes >= 0 ? json(g.memory_total_bytes) : json()},
           {"estimate_tdp_w", t.tdp_w},
           {"estimate_tdp_basis", t.basis}});
    }
    for (const auto& src : listed) src->close();

    const CpuIdentity cpu = read_cpu_identity(config.proc_root);
    const CpuTdpChoice tdp = choose_cpu_tdp(cpu, config.cpu_tdp_w);
    out["sources"] = sources;
    json on = json::object();
    for (const EnergySourceRegistration& reg : energy_source_registry())
      on[reg.name] = enabled(reg.name);
    out[rk::enabled] = on;
    out[rk::cpu_model] = cpu.model.empty() ? json(nullptr) : json(cpu.model);
    out["sockets"] = cpu.sockets;
    out[rk::logical_cpus] = cpu.logical_cpus;
    out["estimator"] = {
        {"cpu_tdp_w", tdp.machine_tdp_w},
        {"basis", tdp.basis},
        {"table_model", tdp.matched_model.empty() ? json() : json(tdp.matched_model)},
        {rk::source, tdp.source},
        {"ram_w_per_gib", kRamWattsPerGiB}};
    out[rk::gpus] = gpus;
  } catch (...) {
    out["error"] = "out of memory while probing";
  }
  return out;
}

}  // namespace trainmeter::detail
