// trainmeter probe: which energy sources work on this machine, and exactly why others do not.
#include <cstdio>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "cli/cli.hpp"
#include "energy/energy.hpp"
#include "energy/source.hpp"
#include "trainmeter/config.hpp"

namespace trainmeter::cli {

int cmd_probe(const std::vector<std::string>& args) {
  std::string names;
  for (const detail::EnergySourceRegistration& r : detail::energy_source_registry())
    names += (names.empty() ? "" : ", ") + std::string(r.name);
  Args a("probe",
         "[--json]\n\n"
         "Lists every energy source (" +
             names +
             ") on this machine: available or not and why, the CPU model and the TDP the "
             "estimator would use. Honours the TRAINMETER_* environment (powercap_root, "
             "perf_event_root, nvml_library, ...).");
  a.flag("--json", "print the result as JSON");
  if (!a.parse(args, 0, 0)) return kExitOk;
  Config config;
  try {
    config = Config::from_env();
  } catch (const Error& e) {
    throw CliError{e.what(), kExitUsage};
  }
  const nlohmann::json r = detail::probe_energy_sources(config);
  if (a.has("--json")) {
    fmt::print("{}\n", r.dump(2));
    return kExitOk;
  }
  fmt::print("Energy sources\n");
  for (const auto& s : r.value("sources", nlohmann::json::array())) {
    fmt::print("  {:<28} {:<18} {}\n", s.value(rk::source, ""), s.value(rk::status, ""),
               s.value(rk::reason, ""));
  }
  const auto& est = r["estimator"];
  fmt::print("CPU model           {}\n",
             r[rk::cpu_model].is_string() ? r[rk::cpu_model].get<std::string>() : "(unknown)");
  fmt::print("Sockets, threads    {}, {}\n", r.value("sockets", 0), r.value(rk::logical_cpus, 0));
  fmt::print("Estimator CPU TDP   {:.1f} W ({}; {})\n", est.value("cpu_tdp_w", 0.0),
             est.value("basis", ""), est.value(rk::source, ""));
  fmt::print("Estimator RAM       {:.3f} W per GiB of process RSS\n",
             est.value("ram_w_per_gib", 0.0));
  for (const auto& g : r.value(rk::gpus, nlohmann::json::array()))
    fmt::print("GPU {}               {} (estimate TDP {:.0f} W, {})\n", g.value(rk::index, 0),
               g.value(rk::name, ""), g.value("estimate_tdp_w", 0.0),
               g.value("estimate_tdp_basis", ""));
  return kExitOk;
}

}  // namespace trainmeter::cli
