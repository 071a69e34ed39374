#include "energy/estimator.hpp"

#include <set>

#include "energy/tdp.hpp"
#include "platform/file.hpp"

namespace trainmeter::detail {

CpuIdentity read_cpu_identity(const std::string& proc_root) noexcept {
  CpuIdentity id;
  try {
    auto text = read_text_file(proc_root + "/cpuinfo", 4 << 20);
    if (!text) return id;
    std::set<std::string> packages;
    std::size_t pos = 0;
    while (pos < text->size()) {
      std::size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      const std::string line = text->substr(pos, nl - pos);
      pos = nl + 1;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon);
      while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      if (key == "processor")
        ++id.logical_cpus;
      else if (key == "model name" && id.model.empty())
        id.model = value;
      else if (key == "physical id")
        packages.insert(value);
    }
    if (!packages.empty()) id.sockets = static_cast<int>(packages.size());
  } catch (...) {
  }
  return id;
}

CpuTdpChoice choose_cpu_tdp(const CpuIdentity& cpu, std::optional<double> override_w) noexcept {
  CpuTdpChoice c;
  try {
    if (override_w && *override_w > 0) {
      c.machine_tdp_w = *override_w;
      c.socket_tdp_w = *override_w / (cpu.sockets > 0 ? cpu.sockets : 1);
      c.basis = "override";
      c.source = "TRAINMETER_CPU_TDP_W (cpu_tdp_w)";
      return c;
    }
    if (auto m = find_cpu_tdp(cpu.model)) {
      c.socket_tdp_w = m->tdp_w;
      c.machine_tdp_w = m->tdp_w * (cpu.sockets > 0 ? cpu.sockets : 1);
      c.basis = "table";
      c.matched_model = m->model;
      c.source = "data/cpu_tdp.tsv: " + m->source;
      return c;
    }
    const int threads = cpu.logical_cpus > 0 ? cpu.logical_cpus : 1;
    c.machine_tdp_w = kDefaultCpuWattsPerThread * threads;
    c.socket_tdp_w = c.machine_tdp_w / (cpu.sockets > 0 ? cpu.sockets : 1);
    c.basis = "per-thread default";
    c.source =
        "4 W per hardware thread (CodeCarbon v3.3.0 core/cpu.py, model not in "
        "data/cpu_tdp.tsv)";
  } catch (...) {
  }
  return c;
}

double estimate_cpu_joules(double machine_tdp_w, double process_cpu_s, int logical_cpus) noexcept {
  if (logical_cpus <= 0) return 0;
  return machine_tdp_w * process_cpu_s / logical_cpus;
}

double estimate_ram_watts(std::int64_t rss_bytes) noexcept {
  return kRamWattsPerGiB * static_cast<double>(rss_bytes) / (1024.0 * 1024.0 * 1024.0);
}

GpuTdpChoice choose_gpu_tdp(const std::string& gpu_name, double power_limit_w) noexcept {
  GpuTdpChoice c;
  try {
    if (auto m = find_gpu_tdp(gpu_name)) {
      c.tdp_w = m->tdp_w;
      c.basis = "table";
      c.source = "data/gpu_tdp.tsv: " + m->model + ", " + m->source;
    } else if (power_limit_w > 0) {
      c.tdp_w = power_limit_w;
      c.basis = "power limit";
      c.source = "NVML enforced power limit (model not in data/gpu_tdp.tsv)";
    } else {
      c.tdp_w = kDefaultGpuWatts;
      c.basis = "default";
      c.source = "Green Algorithms TDP_gpu.csv v3.0 model \"Any\" (2025)";
    }
  } catch (...) {
  }
  return c;
}

}  // namespace trainmeter::detail
